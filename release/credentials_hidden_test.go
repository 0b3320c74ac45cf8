package release

import (
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/djship/djship/internal/testarchive"
)

// deflatedZip is a zip of the files, name and content in pairs,
// compressed.
func deflatedZip(t testing.TB, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, files[i+1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// utf16Text encodes s in UTF-16, little or big endian, with a byte order
// mark or without.
func utf16Text(s string, bigEndian, bom bool) string {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xfeff}, units...)
	}
	b := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return string(b)
}

// prefixLines puts prefix before every line of s.
func prefixLines(prefix, s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

// wrap cuts s into lines of n characters.
func wrap(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s); i += n {
		b.WriteString(s[i:min(i+n, len(s))] + "\n")
	}
	return b.String()
}

// tarOf is a tar of one file.
func tarOf(t testing.TB, name, content string) []byte {
	return testarchive.Tar(t, []testarchive.Entry{testarchive.File(name, content)})
}

// hiddenKeyCases are private key blocks hidden from a scan that reads
// text line by line, and what the scan must say of each.
func hiddenKeyCases(t testing.TB) []struct{ name, content, holds string } {
	key := testKeyBlock("OPENSSH PRIVATE KEY")
	rsa := testKeyBlock("RSA PRIVATE KEY")
	found := "a private key block (BEGIN OPENSSH PRIVATE KEY)"
	b64 := base64.StdEncoding.EncodeToString([]byte(key))
	return []struct{ name, content, holds string }{
		{"behind #", prefixLines("# ", key), found + ", behind comment marks"},
		{"behind # without a space", prefixLines("#", key), found + ", behind comment marks"},
		{"behind //", prefixLines("// ", key), found + ", behind comment marks"},
		{"behind indented //", "func f() {\n" + prefixLines("\t// ", key) + "}\n", found + ", behind comment marks"},
		{"behind ;", prefixLines("; ", key), found + ", behind comment marks"},
		{"behind --", prefixLines("-- ", key), found + ", behind comment marks"},
		{"behind %", prefixLines("% ", key), found + ", behind comment marks"},
		{"in a C block comment", "/*\n" + prefixLines(" * ", key) + " */\n", found + ", behind comment marks"},
		{"base64 on one line", "KEY = \"" + b64 + "\"\n", found + ", base64-encoded"},
		{"base64 wrapped at 76", wrap(b64, 76), found + ", base64-encoded"},
		{"base64 indented in YAML", "deploy:\n  key: |\n" + prefixLines("    ", wrap(b64, 64)), found + ", base64-encoded"},
		{"base64 at the second alignment", base64.StdEncoding.EncodeToString([]byte("x" + key)), found + ", base64-encoded"},
		{"base64 at the third alignment", base64.StdEncoding.EncodeToString([]byte("xy" + key)), found + ", base64-encoded"},
		{"base64 URL alphabet", base64.RawURLEncoding.EncodeToString([]byte("{\"k\": \"" + strings.ReplaceAll(rsa, "\n", `\n`) + "\"}")), "a private key block (BEGIN RSA PRIVATE KEY), base64-encoded"},
		{"base64 in UTF-16", utf16Text(wrap(b64, 64), false, true), found + ", base64-encoded, UTF-16-encoded"},
		{"UTF-16LE with BOM", utf16Text(key, false, true), found + ", UTF-16-encoded"},
		{"UTF-16BE with BOM", utf16Text(key, true, true), found + ", UTF-16-encoded"},
		{"UTF-16LE without BOM", utf16Text(key, false, false), found + ", UTF-16-encoded"},
		{"UTF-16BE without BOM", utf16Text(key, true, false), found + ", UTF-16-encoded"},
		{"UTF-16 after text", utf16Text("# deploy key\n"+key, false, false), found + ", UTF-16-encoded"},
		{"gzip", string(testarchive.Gzip([]byte(key))), found + ", gzip-compressed"},
		{"gzip of a tar", string(testarchive.Gzip(tarOf(t, "deploy/id", key))), found + ", gzip-compressed"},
		{"gzip of a commented key", string(testarchive.Gzip([]byte(prefixLines("# ", key)))), found + ", behind comment marks, gzip-compressed"},
		{"gzip of base64", string(testarchive.Gzip([]byte(wrap(b64, 64)))), found + ", base64-encoded, gzip-compressed"},
		{"gzip of gzip", string(testarchive.Gzip(testarchive.Gzip([]byte(key)))), found + ", gzip-compressed, gzip-compressed"},
		{"bzip2", bzip2Data(t, key), found + ", bzip2-compressed"},
		{"zip", string(deflatedZip(t, "README", "hello\n", "keys/deploy", key)), found + `, in zip member "keys/deploy"`},
		{"zip of UTF-16", string(deflatedZip(t, "k.txt", utf16Text(key, false, true))), found + `, UTF-16-encoded, in zip member "k.txt"`},
		{"gzip in a zip", string(deflatedZip(t, "k.gz", string(testarchive.Gzip([]byte(key))))), found + `, gzip-compressed, in zip member "k.gz"`},
		{"zip in a gzip", string(testarchive.Gzip(deflatedZip(t, "k", key))), found + `, in zip member "k", gzip-compressed`},
		{"credential file by name in a zip", string(deflatedZip(t, "home/.pgpass", "db:5432:shop:shop:hunter2\n")), `PostgreSQL passwords (.pgpass), in zip member "home/.pgpass"`},
		{"zip nested too deep", string(deflatedZip(t, "a.zip", string(deflatedZip(t, "b.zip", string(deflatedZip(t, "k", key)))))),
			unscannedMark + `a zip archive nested deeper than the scan opens, in zip member "b.zip", in zip member "a.zip"`},
	}
}

// bzip2Key is testKeyBlock("OPENSSH PRIVATE KEY") compressed by bzip2 -9
// (Go writes no bzip2), in base64.
const bzip2Key = "QlpoOTFBWSZTWXRBFqYAAA7XgCAQQAI26d2gAIAAECAASEpJk9T0RoPTRAqkgGgAeomEtJJhr8igmRiBlgvNz46g0Ag+RyFSxKirJslimEOqBRV8ISIfi7kinChIOiCLUwA="

// bzip2Data is bzip2Key's stream, checked against s.
func bzip2Data(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(bzip2Key)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := io.ReadAll(bzip2.NewReader(bytes.NewReader(b))); string(r) != s {
		t.Fatal("bzip2Key is not the test key")
	}
	return string(b)
}

// Private key blocks hidden by comment marks, base64, UTF-16 and
// compression are found, written at once or a few bytes at a time, and
// the scan says how each was hidden.
func TestCredentialScannerFindsHiddenKeys(t *testing.T) {
	for _, tt := range hiddenKeyCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 7, 4096} {
				if got := scan(tt.content, n); got != tt.holds {
					t.Errorf("written %d bytes at a time: found %q, want %q", n, got, tt.holds)
				}
			}
		})
	}
}

// What only looks hidden is not a credential: compressed and encoded
// files without a key, and text that names key blocks without holding
// one.
func TestCredentialScannerHiddenLookalikes(t *testing.T) {
	code := "from django.http import HttpResponse\n\n\ndef index(request):\n    return HttpResponse('hello')\n"
	mention := "-----BEGIN PRIVATE KEY-----\n<paste here>\n-----END PRIVATE KEY-----\n"
	tests := []struct{ name, content string }{
		{"gzip of text", string(testarchive.Gzip([]byte(strings.Repeat("a log line\n", 1000))))},
		{"gzip of a tar of code", string(testarchive.Gzip(tarOf(t, "app/views.py", code)))},
		{"zip of code", string(deflatedZip(t, "app/views.py", code, "app/__init__.py", ""))},
		{"wheel", string(deflatedZip(t, "shop-1.0.dist-info/METADATA", "Name: shop\n", "shop/views.py", code))},
		{"docstring", "def load(path):\n    \"\"\"Read a PRIVATE KEY from path.\n\n    The file must hold a PEM private key.\n    \"\"\"\n    return open(path).read()\n"},
		{"commented mention", prefixLines("# ", mention)},
		{"base64 of a mention", base64.StdEncoding.EncodeToString([]byte(mention))},
		{"base64 of a certificate", base64.StdEncoding.EncodeToString([]byte(testKeyBlock("CERTIFICATE")))},
		{"gzip of a public key", string(testarchive.Gzip([]byte(testKeyBlock("PUBLIC KEY"))))},
		{"UTF-16 prose", utf16Text("The -----BEGIN PRIVATE KEY----- line starts a key.\n", false, true)},
		{"not gzip after its magic", "\x1f\x8b\x08 and then text\n"},
		{"not a zip after its magic", "PK\x03\x04 and then text\n"},
		{"pairs of bytes", string(bytes.Repeat([]byte{1, 0, 2, 0}, 100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 7} {
				if got := scan(tt.content, n); got != "" {
					t.Errorf("written %d bytes at a time: found %q", n, got)
				}
			}
		})
	}
}

// A compression bomb stops the scan at its bound, quickly, and the file
// is marked unscanned (packaged with a warning); what fits is scanned.
func TestCredentialScannerBombs(t *testing.T) {
	bomb := gzipZeros(100)
	zeros := make([]byte, 1<<20)
	var zbomb bytes.Buffer
	zw := zip.NewWriter(&zbomb)
	w, _ := zw.Create("zeros")
	for i := 0; i < 100; i++ {
		w.Write(zeros)
	}
	k, _ := zw.Create("k")
	io.WriteString(k, testKeyBlock("EC PRIVATE KEY"))
	zw.Close()
	tests := []struct{ name, content, holds string }{
		{"gzip of 100 MiB", bomb.String(), unscannedMark + "a gzip stream that expands past 64 MiB, too large to scan for keys"},
		{"zip of 100 MiB and a key", zbomb.String(), unscannedMark + `a zip archive that expands past 64 MiB, too large to scan for keys`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scan(tt.content, 32<<10); got != tt.holds {
				t.Errorf("found %q, want %q", got, tt.holds)
			}
		})
	}
}

// A release refuses a source with hidden keys, each named with how it
// was hidden, and packages the lookalikes.
func TestReleaseRefusesHiddenKeys(t *testing.T) {
	site, src := project(t, "")
	cases := hiddenKeyCases(t)
	for i, tt := range cases {
		write(t, filepath.Join(src, "hidden", string(rune('a'+i%26))+strings.Repeat("x", i/26)+".dat"), tt.content)
	}
	write(t, filepath.Join(src, "notes", "fixtures.json.gz"), string(testarchive.Gzip([]byte(`[{"model": "notes.note", "pk": 1}]`))))
	_, err := release(t, site, nil)
	if err == nil {
		t.Fatal("a source with hidden keys was released")
	}
	for i, tt := range cases {
		p := "hidden/" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ".dat"
		if strings.HasPrefix(tt.holds, unscannedMark) {
			// Not read whole: packaged, with a warning (TestReleasePackagesUnscannedArchives).
			if strings.Contains(err.Error(), p) {
				t.Errorf("%s: refused, though it holds nothing the scan read:\n%v", tt.name, err)
			}
			continue
		}
		if want := "\n  " + p + ": " + tt.holds; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error does not say %q", tt.name, want)
		}
	}
	if strings.Contains(err.Error(), "fixtures.json.gz") {
		t.Errorf("a gzip of fixtures was refused:\n%v", err)
	}
	if files := distFiles(t, site.Root); len(files) > 0 {
		t.Errorf("a refused release left files in dist: %v", files)
	}
}

// A release packages an archive the scan cannot read whole (a large
// wheel, a compression bomb), and names it with what was left unread.
func TestReleasePackagesUnscannedArchives(t *testing.T) {
	site, src := project(t, "")
	write(t, filepath.Join(src, "wheels", "big.tar.gz"), gzipZeros(70).String())
	var out bytes.Buffer
	a, err := Build(context.Background(), site, Options{Dist: filepath.Join(site.Root, "dist"), Out: &out,
		Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("an archive past the scan's bounds was refused: %v", err)
	}
	if len(a.Unscanned) != 1 || a.Unscanned[0].Path != "wheels/big.tar.gz" || !strings.Contains(a.Unscanned[0].Reason, "expands past 64 MiB") {
		t.Errorf("unscanned = %+v", a.Unscanned)
	}
	if want := "wheels/big.tar.gz is packaged, but the scan for keys did not read all of it: a gzip stream that expands past 64 MiB"; !strings.Contains(out.String(), want) {
		t.Errorf("the output does not say %q:\n%s", want, out.String())
	}
}

// gzipZeros is a gzip stream of mib MiB of zeros.
func gzipZeros(mib int) *bytes.Buffer {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	zeros := make([]byte, 1<<20)
	for i := 0; i < mib; i++ {
		gz.Write(zeros)
	}
	gz.Close()
	return &b
}
