package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vigilhq/vigil/vigiltest"
)

func indent(s, pad string) string {
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

// backendMux is the test's backend: it streams, echoes and speaks
// WebSocket.
func backendMux(release <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first;")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "last")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, msg) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "backend %s", r.URL.Path) })
	return mux
}

// TestDataPlane runs `vigil serve` with a VirtualService over HTTP and one
// over HTTPS with HTTP/2, the DataScript of Avi's docs, a WebSocket, a
// streamed response, a config change during a request, and the health
// events of the pool's server going down and up.
func TestDataPlane(t *testing.T) {
	release := make(chan struct{})
	backendAddr := vigiltest.FreeAddr(t)
	bl, err := net.Listen("tcp", backendAddr)
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: backendMux(release)}
	go func() { _ = backend.Serve(bl) }()
	defer backend.Close()

	s := startServer(t, t.TempDir(), nil)
	httpAddr, httpsAddr := vigiltest.FreeAddr(t), vigiltest.FreeAddr(t)
	certPEM, keyPEM, roots := vigiltest.SelfSigned(t)
	host, port, _ := net.SplitHostPort(backendAddr)
	yaml := fmt.Sprintf(`kind: Secret
name: shop-tls
spec:
  data:
    cert: |
%s
    key: |
%s
---
kind: HealthMonitor
name: tcp
spec:
  type: tcp
  interval: 200ms
  timeout: 150ms
  failed_checks: 2
  successful_checks: 2
---
kind: Pool
name: web
spec:
  servers:
    - ip: %s
      port: %s
  health_monitors: [tcp]
---
kind: DataScriptSet
name: secure
spec:
  datascript:
    - evt: VS_DATASCRIPT_EVT_HTTP_REQ
      script: |
        if avi.http.uri == "/secure/" then avi.http.send(403) end
---
kind: VirtualService
name: shop
spec:
  listen: %s
  pool: web
  datascripts: [secure]
---
kind: VirtualService
name: shop-tls
spec:
  listen: %s
  pool: web
  datascripts: [secure]
  tls:
    secret: shop-tls
`, indent(string(certPEM), "      "), indent(string(keyPEM), "      "), host, port, httpAddr, httpsAddr)
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	// A broken DataScript is refused with its line.
	_, errOut, code := s.CLI(t, "kind: DataScriptSet\nname: broken\nspec:\n  datascript:\n    - evt: VS_DATASCRIPT_EVT_HTTP_REQ\n      script: |\n        local x = 1\n        if x then avi.http.send(403\n", "apply", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "spec.datascript[0].script") || !strings.Contains(errOut, "line 2") && !strings.Contains(errOut, ":2:") {
		t.Fatalf("broken script: %d %s", code, errOut)
	}

	h1 := &http.Client{Timeout: 10 * time.Second}
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	check := func(c *http.Client, base, proto string) {
		t.Helper()
		for path, want := range map[string]string{"/secure/": "403", "/": "200 backend /", "/secure/x": "200 backend /secure/x"} {
			var got string
			waitFor(t, base+path, 10*time.Second, func() bool {
				resp, err := c.Get(base + path)
				if err != nil {
					got = err.Error()
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = fmt.Sprint(resp.StatusCode)
				if resp.StatusCode == 200 {
					got += " " + string(b)
				}
				if resp.Proto != proto {
					got += " over " + resp.Proto
				}
				return got == want
			})
		}
	}
	check(h1, "http://"+httpAddr, "HTTP/1.1")
	check(h2, "https://"+httpsAddr, "HTTP/2.0")

	// A WebSocket echoes through the proxy.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+httpAddr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("websocket echo: %q %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// A streamed response reaches the client before the backend ends it,
	// and a config change in the middle does not break it.
	for _, c := range []struct {
		client *http.Client
		url    string
	}{{h1, "http://" + httpAddr + "/stream"}, {h2, "https://" + httpsAddr + "/stream"}} {
		resp, err := c.client.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		first := make([]byte, len("first;"))
		if _, err := io.ReadFull(br, first); err != nil || string(first) != "first;" {
			t.Fatalf("%s: first part %q %v", c.url, first, err)
		}
		if _, errOut, code := s.CLI(t, fmt.Sprintf("kind: Pool\nname: web\nspec:\n  servers:\n    - ip: %s\n      port: %s\n      ratio: 2\n  health_monitors: [tcp]\n", host, port), "apply", "-f", "-"); code != 0 {
			t.Fatal(errOut)
		}
		time.Sleep(100 * time.Millisecond)
		release <- struct{}{}
		rest, err := io.ReadAll(br)
		resp.Body.Close()
		if err != nil || string(rest) != "last" {
			t.Fatalf("%s: after a config change: %q %v", c.url, rest, err)
		}
	}

	// The server goes down: SERVER_DOWN and POOL_DOWN with Avi's fields,
	// then 503; it comes back: SERVER_UP and POOL_UP.
	backend.Close()
	waitFor(t, "SERVER_DOWN and POOL_DOWN", 15*time.Second, func() bool {
		return len(listAll(t, s, "SERVER_DOWN")) == 1 && len(listAll(t, s, "POOL_DOWN")) == 1
	})
	var page struct {
		Events []struct {
			Data struct {
				ObjName      string                     `json:"obj_name"`
				EventDetails map[string]json.RawMessage `json:"event_details"`
			} `json:"data"`
		} `json:"events"`
	}
	getJSON(t, s, "/api/v1/events?event_id=SERVER_DOWN", &page)
	var d struct {
		Pool   string `json:"pool"`
		Server struct {
			IP struct {
				Addr string `json:"addr"`
				Type string `json:"type"`
			} `json:"ip"`
			Port        int    `json:"port"`
			FailureCode string `json:"failure_code"`
		} `json:"server"`
		PercentServersUp int `json:"percent_servers_up"`
	}
	if len(page.Events) != 1 || json.Unmarshal(page.Events[0].Data.EventDetails["se_hm_pool_details"], &d) != nil {
		t.Fatalf("SERVER_DOWN: %+v", page)
	}
	if d.Pool != "web" || d.Server.IP.Addr != host || d.Server.IP.Type != "V4" || fmt.Sprint(d.Server.Port) != port ||
		d.Server.FailureCode != "CONNECTION_REFUSED" || d.PercentServersUp != 0 {
		t.Fatalf("SERVER_DOWN details: %+v", d)
	}
	resp, err := h1.Get("http://" + httpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("with the pool down: %d, want 503", resp.StatusCode)
	}
	bl, err = net.Listen("tcp", backendAddr)
	if err != nil {
		t.Fatal(err)
	}
	backend2 := &http.Server{Handler: backendMux(release)}
	go func() { _ = backend2.Serve(bl) }()
	defer backend2.Close()
	waitFor(t, "SERVER_UP and POOL_UP", 15*time.Second, func() bool {
		return len(listAll(t, s, "SERVER_UP")) == 1 && len(listAll(t, s, "POOL_UP")) == 1
	})
	check(h1, "http://"+httpAddr, "HTTP/1.1")
	term(t, s)
}
