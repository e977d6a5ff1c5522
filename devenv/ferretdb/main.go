// Command ferretdb-oms runs FerretDB 1.24 embedded, on its SQLite backend, for oms's local
// development and CI. The upstream binary panics outside its own build (its version file is
// empty), so oms embeds the library instead.
//
// FerretDB opens every database with busy_timeout(10000), journal_mode(wal) and
// auto_vacuum(none) (internal/backends/sqlite/metadata/pool/uri.go) and leaves synchronous at
// SQLite's default, FULL. -sqlite-pragmas adds pragmas of its own to the SQLite URL, each as
// the modernc driver's _pragma=name(value): "synchronous(normal)" keeps a FerretDB or process
// crash harmless but can lose the last commits on a power loss (README "Speed levers").
//
// Two settings of its own, for speed on the shared two cores, neither touching what is stored:
//   - a logger whose attributes are formatted only for a record that is written: FerretDB calls
//     Logger.With on every SQL statement (internal/util/fsql) with the statement's arguments,
//     the document's JSON among them, for a debug line that is then dropped; slog's own handlers
//     format those attributes in With, which took 14% of FerretDB's CPU under oms's writes
//     (perf, bench/e2e.py --via kafka at 1,000 orders/s);
//   - the Go collector's target (GOGC) at 400 unless the environment sets it: the heap is tens
//     of megabytes, and collecting at 100 took another 12%.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27027", "TCP address to listen on (loopback only)")
	dir := flag.String("dir", ".devenv/ferretdb/data", "directory of the SQLite databases")
	pragmas := flag.String("sqlite-pragmas", "", "comma-separated SQLite pragmas, e.g. synchronous(normal)")
	flag.Parse()

	sqliteURL := "file:" + *dir + "/"
	query := url.Values{}
	for _, pragma := range strings.Split(*pragmas, ",") {
		if pragma = strings.TrimSpace(pragma); pragma != "" {
			query.Add("_pragma", pragma)
		}
	}
	if len(query) > 0 {
		sqliteURL += "?" + query.Encode()
	}

	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	logger := slog.New(lazyHandler{inner: slog.NewTextHandler(os.Stderr, nil)})

	f, err := ferretdb.New(&ferretdb.Config{
		Logger:    logger,
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb-oms listening on %s, SQLite URL %s", *listen, sqliteURL)
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// lazyHandler keeps the attributes With gives it and hands them to the inner handler only
// when a record is written (Info and up: the inner handler's default level).
type lazyHandler struct {
	inner slog.Handler
	attrs []slog.Attr
}

func (h lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	kept := make([]slog.Attr, 0, len(h.attrs)+len(attrs))
	return lazyHandler{inner: h.inner, attrs: append(append(kept, h.attrs...), attrs...)}
}

// WithGroup is rare (not on the statement path): the attributes so far go in before it.
func (h lazyHandler) WithGroup(name string) slog.Handler {
	return lazyHandler{inner: h.inner.WithAttrs(h.attrs).WithGroup(name)}
}

func (h lazyHandler) Handle(ctx context.Context, record slog.Record) error {
	if len(h.attrs) == 0 {
		return h.inner.Handle(ctx, record)
	}
	return h.inner.WithAttrs(h.attrs).Handle(ctx, record)
}
