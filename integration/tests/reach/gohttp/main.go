// gohttp: the net/http program of t_supervise_go_http and t_supervise_caddy
// (issue 35).
//
//	gohttp server PORT    serve "hello PATH on connection N" on
//	                      127.0.0.1:PORT (N: the server's count of the
//	                      connections it accepted); /quit answers with the
//	                      count and shuts the server down (Server.Shutdown)
//	gohttp client PORT    GET /a, /b, /c, /quit with one http.Client (its
//	                      keep-alive: one connection), print each body
//	gohttp shutdown PORT  server and client in one process: Shutdown while
//	                      a request is in flight; a new connect meanwhile
//	                      is refused, the request completes
//	gohttp get URL        GET URL, print the status, length and SHA-256
//
// What client and shutdown print is the same over kernel TCP and over rudp
// (no address, no time): the test compares the two runs' output.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

type connKey struct{}

func server(port string) {
	var conns int32
	shut := make(chan struct{})
	mux := http.NewServeMux()
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, atomic.AddInt32(&conns, 1))
		}}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s from %s\n", r.URL.Path, r.RemoteAddr)
		fmt.Fprintf(w, "hello %s on connection %d\n", r.URL.Path, r.Context().Value(connKey{}))
		if r.URL.Path == "/quit" {
			fmt.Fprintf(w, "connections accepted: %d\n", atomic.LoadInt32(&conns))
			go func() {
				srv.Shutdown(context.Background())
				close(shut)
			}()
		}
	})
	err := srv.ListenAndServe()
	// ListenAndServe returns as soon as Shutdown has closed the listener:
	// an exit now could cut /quit's answer off, and the client's transport
	// would send the request again on a new connection, refused (seen once
	// over kernel TCP). Shutdown returns once the answer is out.
	if errors.Is(err, http.ErrServerClosed) {
		<-shut
	}
	fmt.Println("server:", err)
}

func get(c *http.Client, url string) []byte {
	r, err := c.Get(url)
	if err != nil {
		fmt.Println("get:", err)
		os.Exit(1)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		fmt.Println("get:", err)
		os.Exit(1)
	}
	if r.StatusCode != 200 {
		fmt.Println("get:", r.Status)
		os.Exit(1)
	}
	return b
}

func client(port string) {
	// One connection at most: a request that finds the last one not yet
	// back in the idle pool (its read loop returns it a moment after the
	// body's EOF) waits for it, where the default Transport dials a second
	// one meanwhile and keeps it idle. That second connection, carrying
	// nothing, made the server's count 2 once under load (make test).
	tr := &http.Transport{MaxConnsPerHost: 1}
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	for _, p := range []string{"/a", "/b", "/c", "/quit"} {
		fmt.Print(string(get(c, "http://127.0.0.1:"+port+p)))
	}
}

// shutdown: /slow is in flight when Shutdown starts; Shutdown closes the
// listener first (then runs the RegisterOnShutdown functions), so a new
// connect is refused, and Shutdown waits for /slow, which completes once
// released.
func shutdown(port string) {
	addr := "127.0.0.1:" + port
	inflight, release, closed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(inflight)
		<-release
		fmt.Fprintln(w, "slow: done")
	})
	srv := &http.Server{Handler: mux}
	srv.RegisterOnShutdown(func() { close(closed) })
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	answer := make(chan string, 1)
	go func() {
		answer <- string(get(&http.Client{Timeout: 30 * time.Second}, "http://"+addr+"/slow"))
	}()
	<-inflight
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	<-closed
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if c != nil {
		c.Close()
	}
	fmt.Println("connect while shutting down: refused", errors.Is(err, syscall.ECONNREFUSED))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		fmt.Fprintln(os.Stderr, "shutdown: the connect said:", err)
	}
	select {
	case err := <-shut:
		fmt.Println("Shutdown returned with a request in flight:", err)
	default:
		fmt.Println("Shutdown waits for the request in flight")
	}
	close(release)
	fmt.Print("in flight: ", <-answer)
	fmt.Println("Shutdown:", <-shut)
	fmt.Println("Serve:", <-served)
}

func main() {
	switch os.Args[1] {
	case "server":
		server(os.Args[2])
	case "client":
		client(os.Args[2])
	case "shutdown":
		shutdown(os.Args[2])
	case "get":
		b := get(&http.Client{Timeout: 30 * time.Second}, os.Args[2])
		fmt.Printf("200 OK, %d bytes, sha256 %x\n", len(b), sha256.Sum256(b))
	}
}
