// Command tinyd is a tiny static test workload for node engines: it serves
// /healthz and /hello over HTTP until it is stopped. It is packed into a
// one-file image by testenv.TinyImage, so images load into nodes in an instant.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "", "address to serve HTTP on (empty: just wait)")
	msg := flag.String("message", "hello", "body of /hello")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *listen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, *msg) })
		srv := &http.Server{Addr: *listen, Handler: mux}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "tinyd:", err)
			os.Exit(1)
		}
		return
	}
	<-ctx.Done()
}
