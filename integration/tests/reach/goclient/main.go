// reachclient: the Go program of t_supervise_go (issue 35).
//
//	reachclient ADDR          dial ADDR with net.Dial, print LocalAddr and
//	                          RemoteAddr, write 1 MiB while reading the echo,
//	                          half-close; print "echoed N EQUAL ERR"
//	reachclient server PORT   net.Listen on 127.0.0.1:PORT, accept one
//	                          connection, echo it to EOF; print "served N"
//	                          (tests/prog_reach's server, in Go)
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
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

func main() {
	if len(os.Args) == 3 && os.Args[1] == "server" {
		serve(os.Args[2])
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
