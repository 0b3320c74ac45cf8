package testenv

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// TestDelayProxy checks that the proxy passes every byte in order, holds
// each direction for its delay (a round trip takes at least twice the
// delay), and passes the end of a stream on.
func TestDelayProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	for _, delay := range []time.Duration{0, 30 * time.Millisecond} {
		p := StartDelayProxy(t, echo.Addr().String(), delay)
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Write([]byte("ping"))
		reply := make([]byte, 4)
		if _, err := io.ReadFull(c, reply); err != nil || string(reply) != "ping" {
			t.Fatalf("delay %s: the echo of ping: %q %v", delay, reply, err)
		}
		if took := time.Since(start); took < 2*delay {
			t.Errorf("delay %s: a round trip took %s, less than twice the delay", delay, took)
		}
		payload := make([]byte, 4<<20)
		rand.Read(payload)
		go func() {
			c.Write(payload)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("delay %s: %d of %d bytes came back intact (%v)", delay, len(got), len(payload), err)
		}
		c.Close()
	}
}
