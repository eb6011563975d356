package dataplane

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// fixedBackend answers every request on a kept-alive connection with the
// same small response, as cheaply as it can.
func fixedBackend(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\nhello from the backend\n")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// BenchmarkProxySecure: one kept-alive client connection through a
// virtual service with the "403 on /secure/" DataScript to a backend;
// the allocations per request are the proxy's and the client's.
func BenchmarkProxySecure(b *testing.B) {
	addr := fixedBackend(b)
	host, port, _ := net.SplitHostPort(addr)
	st := newFakeStore()
	st.put(spec.KindPool, "web", `{"servers": [{"ip": "`+host+`", "port": `+port+`}]}`)
	st.put(spec.KindDataScriptSet, "secure", `{"datascript": [{"evt": "VS_DATASCRIPT_EVT_HTTP_REQ",
		"script": "if avi.http.uri == \"/secure/\" then avi.http.send(403) end"}]}`)
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web", "datascripts": ["secure"], "access_log": false}`)
	p := New(Options{Store: st})
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	for p.Addr("vs") == "" {
		time.Sleep(time.Millisecond)
	}
	c, err := net.Dial("tcp", p.Addr("vs"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
