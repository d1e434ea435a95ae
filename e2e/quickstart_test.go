package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/questline/questline/internal/testtool"
)

// TestQuickStart runs the README's quick start (scripts/quickstart.sh,
// what `make run` starts after installing and building) on free ports and
// a fresh data directory, and waits for the live summary to show rows in
// all seven window tables and a value in every column; then Ctrl-C must
// stop everything (the script's own ClickHouse included) within a minute.
// It takes about 2 minutes: the first lift rows need a live drop, which
// the quick start has the load generator start 30 s in.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quick start for minutes")
	}
	for _, p := range []string{"clickhouse-server", "clickhouse-client", "curl"} {
		testtool.Require(t, p)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "questline")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/questline/questline/cmd/questline").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	port := func() string { a := testtool.FreeAddr(t); return a[strings.LastIndexByte(a, ':')+1:] }
	cmd := exec.Command("bash", "../scripts/quickstart.sh")
	// A group of its own, so that Ctrl-C can be sent as a terminal sends
	// it: to every process of the foreground group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		"QUESTLINE_BIN="+bin,
		"QUESTLINE_DATA_DIR="+data,
		"QUESTLINE_HTTP_ADDR="+testtool.FreeAddr(t),
		"QUESTLINE_METRICS_ADDR="+testtool.FreeAddr(t),
		"QUESTLINE_EMBEDDED_KAFKA_ADDR="+testtool.FreeAddr(t),
		"QUESTLINE_CLICKHOUSE_DSN=",
		"CH_TCP_PORT="+port(),
		"CH_HTTP_PORT="+port(),
	)
	var stderr strings.Builder // written by exec's copier, read after Wait
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	ended := false // exited was received (cmd.ProcessState is written by Wait's goroutine)
	t.Cleanup(func() {
		if !ended {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
			}
		}
	})

	// The summary: time events ev/s rejected tables yield_rpm lift p99_ms bots.
	var header []string
	var last string
	deadline := time.After(6 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-exited
				ended = true
				t.Fatalf("the quick start ended by itself (%v); last line %q; stderr:\n%s", err, last, stderr.String())
			}
			f := strings.Fields(l)
			if len(f) == 9 && f[0] == "time" {
				header = f
				continue
			}
			if header == nil || len(f) != len(header) {
				continue
			}
			last = l
			if f[4] == "7/7" && !strings.Contains(" "+strings.Join(f[5:], " ")+" ", " - ") && f[1] != "0" {
				t.Logf("after %v: %s\n%s", time.Since(start).Round(time.Second), strings.Join(header, " "), l)
				break wait
			}
		case <-deadline:
			t.Fatalf("after 6 minutes the summary still lacks a table or a column: %q (header %q)", last, header)
		}
	}

	// A second quick start on the same data directory is refused at once
	// (it used to start a second broker on the same files and, giving up
	// on a taken port, stop the first one's ClickHouse).
	second := exec.Command("bash", "../scripts/quickstart.sh")
	second.Env = append(slices.Clone(cmd.Env),
		"QUESTLINE_HTTP_ADDR="+testtool.FreeAddr(t),
		"QUESTLINE_METRICS_ADDR="+testtool.FreeAddr(t),
		"QUESTLINE_EMBEDDED_KAFKA_ADDR="+testtool.FreeAddr(t),
	)
	if b, err := second.CombinedOutput(); err == nil || !strings.Contains(string(b), "another quick start is using") {
		t.Errorf("a second quick start on the same data: %v\n%s", err, b)
	}

	// Its ClickHouse server, to see it gone after Ctrl-C (the pid file
	// alone was once removed with the server still running).
	chPid := 0
	if b, err := os.ReadFile(filepath.Join(data, "clickhouse", "clickhouse.pid")); err != nil {
		t.Fatalf("no ClickHouse pid file while the quick start runs: %v", err)
	} else if chPid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stopBy := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			stopped = stopped || strings.HasPrefix(l, "stopped.")
		case err := <-exited:
			ended = true
			if !stopped || err != nil || strings.Contains(stderr.String(), "exited") {
				t.Errorf("after Ctrl-C the quick start exited with %v, said it stopped: %v; stderr:\n%s", err, stopped, stderr.String())
			}
			if _, err := os.Stat(filepath.Join(data, "clickhouse", "clickhouse.pid")); !os.IsNotExist(err) {
				t.Errorf("its ClickHouse was not stopped: pid file %v", err)
			}
			if err := syscall.Kill(chPid, 0); err == nil {
				t.Errorf("its ClickHouse server (pid %d) still runs", chPid)
				syscall.Kill(chPid, syscall.SIGKILL)
			}
			if b, err := os.ReadFile(filepath.Join(data, "questline.log")); err == nil && (strings.Contains(string(b), "level=ERROR") || strings.Contains(string(b), "unwritten")) {
				t.Errorf("questline run logged errors or stopped with rows unwritten:\n%s", grepLines(string(b), "level=ERROR")+grepLines(string(b), "unwritten"))
			}
			return
		case <-stopBy:
			cmd.Process.Signal(syscall.SIGKILL)
			t.Fatal("the quick start did not stop within a minute of Ctrl-C")
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
