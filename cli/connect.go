package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
)

// defaultAddr is the API address when nothing else names one.
const defaultAddr = "http://127.0.0.1:8480"

// defaultDataDir is the data directory when $VIGIL_DATA_DIR is not set.
const defaultDataDir = "./vigil-data"

const clientHelp = `Client commands find the server and their token like this (first match wins):

  address  --addr, then $VIGIL_ADDR, then the "api=" line of <data-dir>/addr,
           then http://127.0.0.1:8480
  token    --token, then $VIGIL_TOKEN, then <data-dir>/admin.token (only
           sent to a loopback address or the one in <data-dir>/addr)
  CA       --cacert, then $VIGIL_CACERT: a PEM file of the roots to trust
           for https

<data-dir> is $VIGIL_DATA_DIR, or ./vigil-data; 'vigil serve' writes both files
there.`

// clientFlags are the connection flags of a client command.
type clientFlags struct {
	addr, token, cacert string
}

func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "API address, such as http://127.0.0.1:8480 (env VIGIL_ADDR)")
	fl.StringVar(&f.token, "token", "", "API token (env VIGIL_TOKEN)")
	fl.StringVar(&f.cacert, "cacert", "", "PEM file of the CA certificates to trust for https (env VIGIL_CACERT)")
	if cmd.Long == "" {
		cmd.Long = cmd.Short + "."
	}
	cmd.Long += "\n\n" + clientHelp
}

// connection is where a client command connects, and where each part came
// from (for tests and error messages).
type connection struct {
	addr, addrFrom   string
	token, tokenFrom string
	cacert           string
}

func (e *env) dataDir() string {
	if d := e.getenv("VIGIL_DATA_DIR"); d != "" {
		return d
	}
	return defaultDataDir
}

// resolve applies the order documented in clientHelp.
func (e *env) resolve(f *clientFlags) (connection, error) {
	var c connection
	dir := e.dataDir()
	fileAddr, err := readAddrFile(filepath.Join(dir, "addr"))
	if err != nil {
		return c, err
	}
	switch {
	case f.addr != "":
		c.addr, c.addrFrom = f.addr, "--addr"
	case e.getenv("VIGIL_ADDR") != "":
		c.addr, c.addrFrom = e.getenv("VIGIL_ADDR"), "VIGIL_ADDR"
	case fileAddr != "":
		c.addr, c.addrFrom = fileAddr, filepath.Join(dir, "addr")
	default:
		c.addr, c.addrFrom = defaultAddr, "default"
	}
	switch {
	case f.token != "":
		c.token, c.tokenFrom = f.token, "--token"
	case e.getenv("VIGIL_TOKEN") != "":
		c.token, c.tokenFrom = e.getenv("VIGIL_TOKEN"), "VIGIL_TOKEN"
	case isLoopback(c.addr) || (fileAddr != "" && sameAddr(c.addr, fileAddr)):
		// The admin token of a local data directory goes only to the server
		// that owns it, never to an address named elsewhere.
		path := filepath.Join(dir, "admin.token")
		tok, err := os.ReadFile(path)
		switch {
		case err == nil:
			c.token, c.tokenFrom = string(bytes.TrimSpace(tok)), path
		case !errors.Is(err, fs.ErrNotExist):
			return c, fmt.Errorf("read token: %w", err)
		}
	}
	c.cacert = f.cacert
	if c.cacert == "" {
		c.cacert = e.getenv("VIGIL_CACERT")
	}
	return c, nil
}

// readAddrFile returns the "api=" line of the addr file that serve writes,
// or "" when there is no such file.
func readAddrFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read address: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "api="); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}

func parseAddr(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return url.Parse(addr)
}

func isLoopback(addr string) bool {
	u, err := parseAddr(addr)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func sameAddr(a, b string) bool {
	ua, err1 := parseAddr(a)
	ub, err2 := parseAddr(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && strings.EqualFold(ua.Host, ub.Host)
}

// client returns an API client for the command's connection flags.
func (e *env) client(f *clientFlags) (*client.Client, error) {
	c, err := e.resolve(f)
	if err != nil {
		return nil, err
	}
	cl, err := client.New(client.Options{
		Addr:      c.addr,
		Token:     c.token,
		CACert:    c.cacert,
		UserAgent: "vigil/" + versionString(),
	})
	if err != nil {
		return nil, err
	}
	return cl, nil
}
