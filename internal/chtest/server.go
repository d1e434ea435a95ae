// Package chtest starts private clickhouse-server processes for tests: free
// loopback ports, a temporary data directory, a generated config, and
// shutdown plus removal at cleanup. ClickHouse is never mocked in questline.
//
// One server per test binary keeps CI fast; each test gets a fresh database:
//
//	var ch chtest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(ch.Run(m)) }
//
//	func TestX(t *testing.T) {
//		srv := ch.Server(t)
//		dsn := srv.DSN(srv.NewDatabase(t))
//		...
//	}
//
// Fault tests that stop or kill ClickHouse take a server of their own with
// New, so they cannot disturb other tests.
//
// When no clickhouse-server is installed, tests fail if the CI environment
// variable is set and are skipped with a clear message otherwise.
package chtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned by Start when no ClickHouse server binary is
// found.
var ErrNotInstalled = errors.New("chtest: clickhouse-server not found (install the clickhouse-server package, or set CLICKHOUSE_SERVER to the binary)")

// startTimeout bounds the wait for a starting server to answer /ping.
const startTimeout = 60 * time.Second

// Server is one private clickhouse-server process. Its methods are safe for
// concurrent use.
type Server struct {
	argv     []string // binary and leading arguments, e.g. {"clickhouse", "server"}
	dir      string
	cfg      string
	tcpPort  int
	httpPort int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	dbSeq  int
}

// Option configures a server that Start starts.
type Option func(*options)

type options struct{ timezone, password string }

// Password sets the default user's password (default none), for tests of
// clients that must send one.
func Password(p string) Option { return func(o *options) { o.password = p } }

// Timezone sets the server's time zone (default UTC, as questline's own
// local server has it).
func Timezone(name string) Option { return func(o *options) { o.timezone = name } }

// Start starts a server in a new temporary directory. The caller must Close
// it. It returns ErrNotInstalled when no server binary is found.
func Start(opts ...Option) (*Server, error) {
	o := options{timezone: "UTC"}
	for _, opt := range opts {
		opt(&o)
	}
	argv, err := findBinary()
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "chtest-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{argv: argv, dir: dir}
	// Free ports are found by binding :0 and releasing them, so another
	// process may grab one before the server binds it: retry with new ports.
	for attempt := 0; ; attempt++ {
		if s.tcpPort, s.httpPort, err = freePorts(); err == nil {
			if s.cfg, err = writeConfig(dir, s.tcpPort, s.httpPort, o.timezone, o.password); err == nil {
				if err = s.start(); err == nil {
					return s, nil
				}
			}
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// ownerFile holds the pid of the test process that owns a server
// directory.
const ownerFile = "owner.pid"

// sweepStale removes the directories of servers whose test process died
// without cleaning up (a test binary killed by -timeout runs no cleanup;
// its server died with it, see sysProcAttr). Directories of live
// processes, and any without an owner file, are left alone.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "chtest-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// findBinary returns the argv prefix that runs a ClickHouse server:
// $CLICKHOUSE_SERVER, clickhouse-server on PATH or in /usr/sbin (Debian), or
// the single "clickhouse" binary of current releases.
func findBinary() ([]string, error) {
	if p := os.Getenv("CLICKHOUSE_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: CLICKHOUSE_SERVER: %v", ErrNotInstalled, err)
		}
		return []string{p}, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return []string{p}, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := os.Stat(p); err == nil {
			return []string{p}, nil
		}
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return []string{p, "server"}, nil
	}
	return nil, ErrNotInstalled
}

func freePorts() (int, int, error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], nil
}

// start runs the server process and waits until it answers /ping.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("chtest: server already running")
	}
	out, err := os.OpenFile(filepath.Join(s.dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child keeps its own descriptor
	args := append(s.argv[1:len(s.argv):len(s.argv)], "--config-file="+s.cfg)
	cmd := exec.Command(s.argv[0], args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chtest: start %s: %w", s.argv[0], err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	url := "http://127.0.0.1:" + strconv.Itoa(s.httpPort) + "/ping"
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.cmd, s.exited = cmd, exited
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("chtest: clickhouse-server exited during startup: %s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("chtest: clickhouse-server not ready after %s: %s", startTimeout, s.logTail())
		}
	}
}

// logTail returns the end of the server's error log and stdout, for
// startup failure messages.
func (s *Server) logTail() string {
	var msg string
	for _, name := range []string{"server.err.log", "stdout.log"} {
		b, _ := os.ReadFile(filepath.Join(s.dir, "log", name))
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		if len(b) > 0 {
			msg += "\n--- " + name + ":\n" + string(b)
		}
	}
	if msg == "" {
		return "(no server output)"
	}
	return msg
}

// Addr returns the host:port of the native protocol.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.tcpPort) }

// HTTPAddr returns the host:port of the HTTP interface.
func (s *Server) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(s.httpPort) }

// DSN returns the clickhouse:// DSN (the QUESTLINE_CLICKHOUSE_DSN form) of
// database on this server.
func (s *Server) DSN(database string) string {
	return "clickhouse://" + s.Addr() + "/" + database
}

// Dir returns the server's temporary directory (config, data and logs).
func (s *Server) Dir() string { return s.dir }

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// PID returns the server process's pid, or 0 while it is not running
// (for measuring its CPU time).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down gracefully (SIGTERM, SIGKILL after 20 s) and
// keeps its data directory and ports, for Restart.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM, 20*time.Second) }

// Kill kills the server with SIGKILL, as a crash would, keeping its data
// directory and ports, for Restart.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL, 0) }

func (s *Server) signal(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return err
	}
	if grace > 0 {
		select {
		case <-s.exited:
		case <-time.After(grace):
			s.cmd.Process.Kill()
		}
	}
	<-s.exited
	s.cmd, s.exited = nil, nil
	return nil
}

// Restart starts a stopped or killed server again on the same ports and
// data directory. It is a no-op error if the server is running.
func (s *Server) Restart() error { return s.start() }

// Close kills the server and removes its directory.
func (s *Server) Close() error {
	if err := s.Kill(); err != nil {
		return err
	}
	return os.RemoveAll(s.dir)
}

// Exec runs one statement on the server over HTTP (no database selected),
// for test setup and fault injection.
func (s *Server) Exec(ctx context.Context, query string) error {
	return s.httpQuery(ctx, query)
}
