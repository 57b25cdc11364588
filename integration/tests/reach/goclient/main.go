// reachclient: the Go program of t_supervise_go (issue 35).
//
//	reachclient ADDR          dial ADDR with net.Dial, print LocalAddr and
//	                          RemoteAddr, write 1 MiB while reading the echo,
//	                          half-close; print "echoed N EQUAL ERR"
//	reachclient server PORT   net.Listen on 127.0.0.1:PORT, accept one
//	                          connection, echo it to EOF; print "served N"
//	                          (tests/prog_reach's server, in Go)
//	reachclient deadline ADDR read and write deadlines on a connection to an
//	                          echo server (t_supervise_go_net)
//	reachclient dialcancel ADDR
//	                          DialContext to a blackholed ADDR, cancelled
//	                          (t_supervise_go_net)
//
// The two last print only what must be the same over kernel TCP and over
// rudp (no address, no time): the test compares the two runs' output.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func serve(port string) {
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	c, err := l.Accept()
	if err != nil {
		fmt.Println("accept:", err)
		os.Exit(1)
	}
	fmt.Printf("accepted from %v on %v\n", c.RemoteAddr(), c.LocalAddr())
	n, err := io.Copy(c, c)
	if err != nil {
		fmt.Println("echo:", err)
		os.Exit(1)
	}
	c.Close()
	l.Close()
	fmt.Printf("served %d\n", n)
}

// deadlineErr says what a test of a deadline needs to know of err.
func deadlineErr(what string, n int, err error) {
	var ne net.Error
	fmt.Printf("%s: %d bytes, ErrDeadlineExceeded %v, Timeout() %v\n", what, n,
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout())
}

// deadline: a read past its deadline fails with os.ErrDeadlineExceeded, a
// write whose deadline has passed too, and the connection stays usable
// once the deadline is extended (the echo comes back, then EOF).
func deadline(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // nothing was sent: no echo
	n, err := c.Read(buf)
	deadlineErr("read past its deadline", n, err)
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	n, err = c.Write([]byte("ping"))
	deadlineErr("write past its deadline", n, err)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err = c.Write([]byte("ping")); err == nil {
		_, err = io.ReadFull(c, buf)
	}
	fmt.Printf("deadline extended: echo %q, %v\n", buf, err)
	c.(*net.TCPConn).CloseWrite()
	n, err = c.Read(buf)
	fmt.Println("then:", n, err)
	c.Close()
}

// fds counts this process's open files.
func fds() int {
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Println("fds:", err)
		os.Exit(1)
	}
	return len(d)
}

// dialcancel: a DialContext to a peer that never answers, its context
// cancelled after 300 ms, returns context.Canceled, and leaves no file
// open; then waits for a line on stdin, while the test looks for a
// connection left behind.
func dialcancel(addr string) {
	r, w, _ := os.Pipe() // starts Go's poller (its epoll fd) before the count
	before := fds()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	t0 := time.Now()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	fmt.Fprintf(os.Stderr, "dialcancel: %v after %v\n", err, time.Since(t0))
	if c != nil {
		c.Close()
	}
	fmt.Println("dial: context.Canceled", errors.Is(err, context.Canceled))
	fmt.Println("files open: as many as before", fds() == before)
	fmt.Println("waiting")
	os.Stdin.Read(make([]byte, 1))
	r.Close()
	w.Close()
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "server" {
		serve(os.Args[2])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "deadline" {
		deadline(os.Args[2])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "dialcancel" {
		dialcancel(os.Args[2])
		return
	}
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	fmt.Printf("local %v remote %v\n", c.LocalAddr(), c.RemoteAddr())
	data := bytes.Repeat([]byte("0123456789abcdef"), 65536)
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	fmt.Println("echoed", len(got), bytes.Equal(got, data), err)
}
