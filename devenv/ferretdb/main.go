// Command ferretdb-oms runs FerretDB 1.24 embedded, on its SQLite backend, for oms's local
// development and CI. The upstream binary panics outside its own build (its version file is
// empty), so oms embeds the library instead.
//
// FerretDB opens every database with busy_timeout(10000), journal_mode(wal) and
// auto_vacuum(none) (internal/backends/sqlite/metadata/pool/uri.go) and leaves synchronous at
// SQLite's default, FULL. -sqlite-pragmas adds pragmas of its own to the SQLite URL, each as
// the modernc driver's _pragma=name(value): "synchronous(normal)" keeps a FerretDB or process
// crash harmless but can lose the last commits on a power loss (README "Speed levers").
package main

import (
	"context"
	"flag"
	"log"
	"net/url"
	"os/signal"
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

	f, err := ferretdb.New(&ferretdb.Config{
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
