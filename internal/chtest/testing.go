package chtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// New starts a server for t alone and closes it at t's cleanup. Use it for
// tests that Stop, Kill or Restart the server; others should use Shared.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Shared is one server per test binary, started on first use and closed by
// Run. The zero value is ready to use; declare it as a package variable of
// the test package.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Server returns the shared server, starting it on first call. It fails t
// if the server cannot start, or skips t when ClickHouse is not installed
// and the CI environment variable is unset.
func (sh *Shared) Server(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() { sh.srv, sh.err = Start() })
	if sh.err != nil {
		unavailable(t, sh.err)
	}
	return sh.srv
}

// Run runs the tests and then closes the shared server, if one was started.
// Call it from TestMain: os.Exit(sh.Run(m)).
func (sh *Shared) Run(m *testing.M) int {
	code := m.Run()
	if sh.srv != nil {
		sh.srv.Close()
	}
	return code
}

// unavailable fails or skips t for a server that could not start: a
// missing installation is a skip outside CI, anything else is a failure.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v; CI unset, so this is a skip, not a failure", err)
	}
	t.Fatal(err)
}

// NewDatabase creates a fresh, uniquely named database for t and drops it at
// t's cleanup. It returns the database name; DSN turns it into a DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbSeq++
	name := fmt.Sprintf("t%d_%s", s.dbSeq, identifier(t.Name()))
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.httpQuery(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("chtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s.Running() {
			s.httpQuery(ctx, "DROP DATABASE IF EXISTS "+name)
		}
	})
	return name
}

// identifier turns a test name into a short [a-z0-9_] identifier part.
func identifier(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 40 {
			break
		}
	}
	return b.String()
}

// Query runs query over HTTP and returns its output in TabSeparated
// format, for assertions in tests.
func (s *Server) Query(ctx context.Context, query string) (string, error) {
	return s.httpDo(ctx, "", "", query)
}

// Reader is a user of every test server that reads the database
// questline and nothing else: readonly = 2 (no writes, no DDL; settings
// may change, as clients set max_execution_time), as the Grafana data
// source's user in docker-compose.yml (deploy/clickhouse/initdb).
const Reader = "reader"

// QueryAs is Query as user (Reader; the default user is "").
func (s *Server) QueryAs(ctx context.Context, user, query string) (string, error) {
	return s.httpDo(ctx, user, "", query)
}

// QueryIn is Query with db as the current database (unqualified table
// names are db's).
func (s *Server) QueryIn(ctx context.Context, db, query string) (string, error) {
	return s.httpDo(ctx, "", db, query)
}

func (s *Server) httpQuery(ctx context.Context, query string) error {
	_, err := s.httpDo(ctx, "", "", query)
	return err
}

// httpDo posts query as the request body (a URL parameter would limit its
// length: large INSERTs are refused).
func (s *Server) httpDo(ctx context.Context, user, db, query string) (string, error) {
	params := url.Values{}
	if user != "" {
		params.Set("user", user)
	}
	if db != "" {
		params.Set("database", db)
	}
	u := "http://" + s.HTTPAddr() + "/?" + params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(query))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("chtest: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}
