package clickhouse

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// migrationFiles are the schema migrations, applied in file name order.
//
// Extension point: to add or change tables, add a file
// migrations/NNNN_name.sql with the next free number (window processors use
// 0100 and up). Never edit a file once it has shipped: Migrate refuses to
// run when an applied migration's text has changed. Statements are
// separated by a ';' at the end of a line and must be idempotent, because
// two Migrate runs may race: use CREATE TABLE IF NOT EXISTS and, for new
// columns, ALTER TABLE t ADD COLUMN (18.16 has no IF NOT EXISTS there; an
// "already exists" error is treated as success). Tables are named without
// a database: statements run in the DSN's database. Tables written through
// a Writer must be ReplacingMergeTree sorted by the row's identity.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
	Checksum   string
}

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	for _, name := range names {
		base := path.Base(name)
		num, rest, ok := strings.Cut(strings.TrimSuffix(base, ".sql"), "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("clickhouse: migration %s: name must be NNNN_name.sql", base)
		}
		if len(out) > 0 && out[len(out)-1].Version == uint32(v) {
			return nil, fmt.Errorf("clickhouse: migration %s: version %d used twice", base, v)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: uint32(v), Name: rest, Statements: splitStatements(string(b)), Checksum: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// splitStatements drops "--" comment lines and splits on ';' at line ends.
func splitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			stmts = append(stmts, s)
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
)
ENGINE = ReplacingMergeTree
ORDER BY version`

// ClickHouse error codes that an idempotent statement may get when a
// concurrent run did its work first; only with "already exists" in the
// message do they count as success.
var alreadyDoneCodes = map[int32]bool{
	15: true, // DUPLICATE_COLUMN
	44: true, // ILLEGAL_COLUMN: "column with this name already exists" (ADD COLUMN)
	57: true, // TABLE_ALREADY_EXISTS
	82: true, // DATABASE_ALREADY_EXISTS
}

// Migrate creates the database named by dsn if needed and applies the
// migrations not yet recorded in its schema_migrations table. Running it
// again, or from several processes at once, is safe and leaves the same
// schema.
//
// To change the schema, add sinks/clickhouse/migrations/NNNN_name.sql with
// the next free number (window processors: 0100 and up); never edit a
// shipped file (Migrate refuses to run over a changed one). Statements end
// with ';' at a line end, name tables without a database, and must be
// idempotent: CREATE TABLE IF NOT EXISTS, and ALTER TABLE ... ADD COLUMN
// (an "already exists" answer counts as done; 18.16 has no IF NOT EXISTS
// there). Tables written through a Writer must be ReplacingMergeTree
// sorted by the row identity.
func Migrate(ctx context.Context, dsn string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	migs, err := Migrations()
	if err != nil {
		return err
	}
	opts, database, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	server, err := ch.Open(opts)
	if err != nil {
		return fmt.Errorf("clickhouse: open: %w", err)
	}
	err = execDDL(ctx, server, "CREATE DATABASE IF NOT EXISTS "+database)
	server.Close()
	if err != nil {
		return fmt.Errorf("clickhouse: create database %s: %w", database, err)
	}
	opts.Auth.Database = database
	conn, err := ch.Open(opts)
	if err != nil {
		return fmt.Errorf("clickhouse: open: %w", err)
	}
	defer conn.Close()
	if err := execDDL(ctx, conn, migrationsTable); err != nil {
		return fmt.Errorf("clickhouse: create schema_migrations: %w", err)
	}
	applied := map[uint32]string{}
	rows, err := conn.Query(ctx, "SELECT version, any(checksum) FROM schema_migrations GROUP BY version")
	if err != nil {
		return fmt.Errorf("clickhouse: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return err
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range migs {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return fmt.Errorf("clickhouse: migration %04d_%s changed after it was applied; add a new migration instead", m.Version, m.Name)
			}
			continue
		}
		for _, stmt := range m.Statements {
			if err := execDDL(ctx, conn, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		if err := recordMigration(ctx, conn, m); err != nil {
			return fmt.Errorf("clickhouse: record migration %04d_%s: %w", m.Version, m.Name, err)
		}
		logger.Info("clickhouse migration applied", "database", database, "version", m.Version, "name", m.Name)
	}
	return nil
}

// execDDL runs an idempotent DDL statement, treating "already exists" as
// success (a concurrent Migrate got there first).
func execDDL(ctx context.Context, conn interface {
	Exec(context.Context, string, ...any) error
}, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var exc *ch.Exception
	if errors.As(err, &exc) && alreadyDoneCodes[exc.Code] && strings.Contains(exc.Message, "already exists") {
		return nil
	}
	return err
}

// recordMigration inserts m into schema_migrations. It uses a native batch:
// an INSERT ... VALUES sent through Exec hangs on 18.16.
func recordMigration(ctx context.Context, conn driver.Conn, m Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(m.Version, m.Name, m.Checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}
