// gohttp: the net/http program of t_supervise_go_http (issue 35).
//
//	gohttp server PORT   serve "hello PATH from REMOTEADDR" on 127.0.0.1:PORT;
//	                     /quit shuts the server down (Server.Shutdown)
//	gohttp client PORT   GET /a, /b, /c, /quit with one http.Client (its
//	                     keep-alive: one connection), print each body
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if os.Args[1] == "server" {
		mux := http.NewServeMux()
		srv := &http.Server{Addr: "127.0.0.1:" + os.Args[2], Handler: mux}
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s from %s\n", r.URL.Path, r.RemoteAddr)
			if r.URL.Path == "/quit" {
				go srv.Shutdown(context.Background())
			}
		})
		err := srv.ListenAndServe()
		fmt.Println("server:", err)
		return
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, p := range []string{"/a", "/b", "/c", "/quit"} {
		r, err := c.Get("http://127.0.0.1:" + os.Args[2] + p)
		if err != nil {
			fmt.Println("get:", err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		fmt.Print(string(b))
	}
}
