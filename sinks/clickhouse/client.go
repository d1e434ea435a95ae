// Package clickhouse is questline's one way to write to ClickHouse: the
// schema and its versioned migrations (Migrate), a batching, retrying,
// idempotent Writer that every role writing rows uses, and the sink role
// (Run) that moves questline.events and questline.events.dlq into the
// events and rejected_events tables exactly once as seen by the queries of
// docs/analysts.md.
//
// Idempotency does not depend on callers: every table written through a
// Writer must be a ReplacingMergeTree whose sorting key is the row's
// identity (NewWriter checks the engine), so a batch inserted twice, in
// full or in part, reads once with FINAL or argMax.
//
// Extension points, for the window processors and any later table: add a
// migration file (see Migrate and the migrations directory), declare a
// Table[T] for the row type, and write through a Writer from NewWriter.
//
// All SQL runs on ClickHouse 18.16 (the Debian package the tests use) and
// on current releases.
package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultDatabase is the database of a DSN without one (SPEC §6).
const DefaultDatabase = "questline"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Client is a connection pool to one ClickHouse database plus the metrics
// that every Writer made from it reports into. Build one per process.
type Client struct {
	conn     driver.Conn
	database string
	logger   *slog.Logger
	metrics  *writerMetrics
}

// Open connects to the database named by dsn (the QUESTLINE_CLICKHOUSE_DSN
// form, e.g. clickhouse://127.0.0.1:9000/questline; default database
// "questline"), registering the writer metrics with reg (nil: not
// registered) and logging to logger (nil: discarded). The database must
// exist: Migrate creates it.
func Open(ctx context.Context, dsn string, reg prometheus.Registerer, logger *slog.Logger) (*Client, error) {
	opts, database, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	opts.Auth.Database = database
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %s: %w", opts.Addr, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newWriterMetrics(reg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	warnUnlessUTC(ctx, conn, logger)
	return &Client{conn: conn, database: database, logger: logger, metrics: m}, nil
}

// warnUnlessUTC logs a warning when the server's time zone is not UTC.
// The tables' DateTime columns have no zone of their own (18.16 cannot
// give a key column one by ALTER), so the server's zone is how they read:
// SPEC §6 and docs/analysts.md promise UTC, and a server in another zone
// shows and groups them (toStartOfHour, toDate, the month partitions) in
// its own. Stored values (Unix seconds) are right either way.
func warnUnlessUTC(ctx context.Context, conn driver.Conn, logger *slog.Logger) {
	var tz string
	if err := conn.QueryRow(ctx, "SELECT timezone()").Scan(&tz); err != nil {
		logger.Warn("clickhouse: could not read the server's time zone", "err", err)
		return
	}
	if !isUTC(tz) {
		logger.Warn("clickhouse: the server's time zone is not UTC, so questline's DateTime columns read in it (docs/analysts.md, \"Times\"): set <timezone>UTC</timezone> in its config", "timezone", tz)
	}
}

// isUTC reports whether zone name is UTC under any of its names: offset 0
// in winter and in summer.
func isUTC(name string) bool {
	switch strings.TrimPrefix(name, "Etc/") {
	case "UTC", "UCT", "Universal", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich":
		return true // also without the system's zone files
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return false
	}
	for _, month := range []time.Month{time.January, time.July} {
		if _, off := time.Date(2026, month, 1, 0, 0, 0, 0, loc).Zone(); off != 0 {
			return false
		}
	}
	return true
}

// parseDSN parses a clickhouse:// DSN and returns its options (database
// cleared) and its database name, checked to be a plain identifier since
// it is spliced into DDL.
func parseDSN(dsn string) (*ch.Options, string, error) {
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("clickhouse: DSN: %w", err)
	}
	database := opts.Auth.Database
	if database == "" {
		database = DefaultDatabase
	}
	if !identRE.MatchString(database) {
		return nil, "", fmt.Errorf("clickhouse: DSN: database %q is not a plain identifier", database)
	}
	opts.Auth.Database = ""
	if opts.DialTimeout == 0 || opts.DialTimeout > 5*time.Second {
		opts.DialTimeout = 5 * time.Second
	}
	// Compression is the DSN's choice (?compress=lz4): it halves the bytes
	// on a real network but only costs CPU on both sides over loopback.
	return opts, database, nil
}

// Database returns the database name the client writes to.
func (c *Client) Database() string { return c.database }

// Conn returns the underlying connection pool, for queries. Write rows
// through a Writer, never through Conn.
func (c *Client) Conn() driver.Conn { return c.conn }

// Close closes the connection pool.
func (c *Client) Close() error { return c.conn.Close() }
