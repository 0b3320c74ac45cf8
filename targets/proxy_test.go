package targets

import (
	"context"
	"strings"
	"testing"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// TestProxyTravelsOnStdin checks that apt and pip see the site's proxy
// while the URL, which may hold a password, stays out of argv.
func TestProxyTravelsOnStdin(t *testing.T) {
	proxy := "http://deploy:s3cret-proxy-pw@proxy.example.com:3128"
	local := remote.NewLocal(nil)
	defer local.Close()
	d := &Deploy{Host: local, Settings: sites.Settings{Proxy: proxy}}
	c := d.withProxy(remote.Command{Script: `printf '%s|%s' "$http_proxy" "$https_proxy"`, Quiet: true})
	if strings.Contains(c.Script, "s3cret") {
		t.Fatalf("the proxy is in the command line: %s", c.Script)
	}
	res, err := local.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != proxy+"|"+proxy {
		t.Errorf("the command saw %q", got)
	}
}
