// Command ferretdb-oms runs FerretDB 1.24 embedded, on its SQLite backend, for oms's local
// development and CI. The upstream binary panics outside its own build (its version file is
// empty), so oms embeds the library instead.
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27027", "TCP address to listen on (loopback only)")
	dir := flag.String("dir", ".devenv/ferretdb/data", "directory of the SQLite databases")
	flag.Parse()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb-oms listening on %s, data in %s", *listen, *dir)
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
