package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/vigiltest"
)

// TestHTTPSWithHTTP2AndHTTP1: the same DataScript answers 403 on /secure/
// and everything else is proxied, over HTTP/2 and over HTTP/1.1 on one TLS
// virtual service; bodies stream both ways.
func TestHTTPSWithHTTP2AndHTTP1(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			fmt.Fprint(w, "first\n")
			w.(http.Flusher).Flush()
			<-release
			fmt.Fprint(w, "second\n")
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %s %s", len(b), r.Header.Get("X-Forwarded-Proto"), b[:min(5, len(b))])
		default:
			fmt.Fprintf(w, "backend %s", r.URL.Path)
		}
	}))
	defer backend.Close()
	certPEM, keyPEM, roots := vigiltest.SelfSigned(t)

	st := newFakeStore()
	st.put(spec.KindPool, "web", poolOf(backend))
	st.put(spec.KindDataScriptSet, "secure", `{"datascript": [{"evt": "VS_DATASCRIPT_EVT_HTTP_REQ",
		"script": "if avi.http.uri == \"/secure/\" then avi.http.send(403) end"}]}`)
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web", "datascripts": ["secure"], "tls": {"secret": "shop-tls"}}`)
	p := New(Options{Store: st, Certs: func(_ context.Context, secret string) ([]byte, []byte, error) {
		if secret != "shop-tls" {
			return nil, nil, errors.New("no such secret")
		}
		return certPEM, keyPEM, nil
	}})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// Before Stop, which waits for the streamed requests to end.
	defer close(release)
	waitFor(t, "the TLS virtual service", 5*time.Second, func() bool { return p.Addr("vs") != "" })
	base := "https://" + p.Addr("vs")

	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	h1 := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	for proto, c := range map[string]*http.Client{"HTTP/2.0": h2, "HTTP/1.1": h1} {
		t.Run(proto, func(t *testing.T) {
			get := func(path string) (int, string) {
				resp, err := c.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.Proto != proto {
					t.Fatalf("spoke %s, want %s", resp.Proto, proto)
				}
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if code, _ := get("/secure/"); code != 403 {
				t.Fatalf("/secure/: %d, want 403", code)
			}
			if code, body := get("/shop"); code != 200 || body != "backend /shop" {
				t.Fatalf("/shop: %d %q", code, body)
			}
			// A body of unknown length, and one of known length.
			pr, pw := io.Pipe()
			go func() {
				for range 4 {
					_, _ = pw.Write([]byte(strings.Repeat("z", 1000)))
				}
				pw.Close()
			}()
			for _, body := range []io.Reader{pr, strings.NewReader(strings.Repeat("y", 3000))} {
				resp, err := c.Post(base+"/echo", "text/plain", body)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				ok := strings.HasPrefix(string(b), "4000 ") || strings.HasPrefix(string(b), "3000 ")
				if !ok || !strings.HasSuffix(string(b), " https "+strings.Repeat(string(b[len(b)-1]), 5)) {
					t.Fatalf("echo: %q", b)
				}
			}
			// A streamed response arrives before the backend ends it.
			resp, err := c.Get(base + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line := make(chan string, 1)
			go func() {
				l, _ := bufio.NewReader(resp.Body).ReadString('\n')
				line <- l
			}()
			select {
			case l := <-line:
				if l != "first\n" {
					t.Fatalf("first line %q", l)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the streamed response did not arrive before its end")
			}
		})
	}
}
