// reachclient: a Go client for t_supervise_go (issue 35). Dials ADDR with
// net.Dial, prints its LocalAddr and RemoteAddr, writes 1 MiB while
// reading the echo, half-closes, and prints "echoed N EQUAL ERR".
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
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
