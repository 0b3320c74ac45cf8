package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// aptProxy is the machines' only way to Debian's mirror: an HTTP proxy
// on the bridge that passes apt's requests to the mirrors this machine
// uses and keeps the files that never change under their address
// (packages in pool/, index files fetched by hash), so that the second
// machine to install nginx does not download it again.
type aptProxy struct {
	addr    string
	cache   string
	allowed map[string]bool
	server  *http.Server
	client  *http.Client
	// hits and misses count the cached files served and fetched.
	hits, misses atomic.Int64
}

func startAptProxy(ip, cache string) (*aptProxy, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	p := &aptProxy{addr: l.Addr().String(), cache: cache, allowed: mirrorHosts(),
		client: &http.Client{Timeout: 10 * time.Minute}}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go p.server.Serve(l)
	return p, nil
}

// mirrorHosts are the hosts of this machine's apt sources.
func mirrorHosts() map[string]bool {
	hosts := map[string]bool{}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok {
				for _, u := range strings.Fields(v) {
					if pu, err := url.Parse(u); err == nil {
						hosts[pu.Host] = true
					}
				}
			}
		}
	}
	if len(hosts) == 0 {
		hosts["deb.debian.org"] = true
	}
	return hosts
}

func (p *aptProxy) close() { p.server.Close() }

// immutable reports whether a mirror path names content that never
// changes: a package file, or an index file addressed by its hash.
func immutable(path string) bool {
	return strings.Contains(path, "/by-hash/") || (strings.Contains(path, "/pool/") && strings.HasSuffix(path, ".deb"))
}

func (p *aptProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" || !p.allowed[r.URL.Host] {
		http.Error(w, fmt.Sprintf("the test machines' proxy reaches only this machine's Debian mirrors, not %s", r.URL), http.StatusForbidden)
		return
	}
	cached := ""
	if immutable(r.URL.Path) {
		sum := sha256.Sum256([]byte(r.URL.Host + r.URL.Path))
		cached = filepath.Join(p.cache, hex.EncodeToString(sum[:]))
		if f, err := os.Open(cached); err == nil {
			defer f.Close()
			p.hits.Add(1)
			st, _ := f.Stat()
			http.ServeContent(w, r, "", st.ModTime(), f)
			return
		}
		p.misses.Add(1)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, h := range []string{"If-Modified-Since", "If-None-Match", "Range", "If-Range", "Cache-Control"} {
		if v := r.Header.Get(h); v != "" && cached == "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Length", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if cached == "" || resp.StatusCode != http.StatusOK || r.Method != http.MethodGet {
		io.Copy(w, resp.Body)
		return
	}
	// Keep the file only once it has all arrived.
	tmp, err := os.CreateTemp(p.cache, ".partial-")
	if err != nil {
		io.Copy(w, resp.Body)
		return
	}
	n, err := io.Copy(io.MultiWriter(w, tmp), resp.Body)
	tmp.Close()
	if err != nil || (resp.ContentLength >= 0 && n != resp.ContentLength) {
		os.Remove(tmp.Name())
		return
	}
	os.Rename(tmp.Name(), cached)
}
