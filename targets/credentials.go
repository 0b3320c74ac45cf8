package targets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"syscall"
)

// Credential is a file of the source that holds a private key, a password
// or a token. A release refuses it unless source.include names it.
type Credential struct {
	// Path is the file, slash-separated from the source's top.
	Path string
	// Holds says what was found, e.g. "a private key block (BEGIN
	// OPENSSH PRIVATE KEY)"; never the secret itself.
	Holds string
	// Include is the source.include pattern that puts the file back into
	// the release; empty when the file refuses the release.
	Include string
}

// credentialNames are files that hold passwords or tokens whatever their
// content looks like. A name without / matches at any depth; one with /
// matches the end of the path.
var credentialNames = []struct{ name, holds string }{
	{".pgpass", "PostgreSQL passwords (.pgpass)"},
	{".netrc", "login passwords (.netrc)"},
	{"_netrc", "login passwords (_netrc)"},
	{".git-credentials", "git's stored credentials (.git-credentials)"},
	{".pypirc", "package index passwords (.pypirc)"},
	{".aws/credentials", "AWS access keys (.aws/credentials)"},
}

// credentialByName says what the file at rel holds judged by its name
// alone, or "".
func credentialByName(rel string) string {
	for _, c := range credentialNames {
		if strings.Contains(c.name, "/") {
			if rel == c.name || strings.HasSuffix(rel, "/"+c.name) {
				return c.holds
			}
		} else if path.Base(rel) == c.name {
			return c.holds
		}
	}
	return ""
}

// hashAndScan reads the file at p once, not following a symbolic link
// there, and returns its sha256 and what credential it holds, judged by
// its name rel and its content ("" when none).
func hashAndScan(p, rel string) (sum, holds string, err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sum, _, holds, err = scanFile(f, rel)
	return sum, holds, err
}

// scanFile reads r, the content of the file at rel, to its end once and
// returns its sha256, its size and what credential it holds, judged by
// its name and its content ("" when none).
func scanFile(r io.Reader, rel string) (sum string, size int64, holds string, err error) {
	h := sha256.New()
	var s credentialScanner
	size, err = io.Copy(io.MultiWriter(h, &s), r)
	if err != nil {
		return "", 0, "", err
	}
	holds = credentialByName(rel)
	if found := s.result(); found != "" {
		if holds != "" {
			holds += "; "
		}
		holds += found
	}
	return hex.EncodeToString(h.Sum(nil)), size, holds, nil
}

// maxLine bounds the part of a line the scanner holds before it looks at
// it; a longer line is looked at in parts of this size. Key blocks and
// the one-line forms of keys are far shorter.
const maxLine = 1 << 20

// minKeyBody is the fewest base64 characters a private key block's body
// must have to count: an Ed25519 key in PKCS #8 has 64.
const minKeyBody = 48

var (
	// pemBegin is the first line of a private key block in PEM or
	// OpenPGP armour (RSA, EC, DSA, ENCRYPTED, OPENSSH, PGP … BLOCK) and
	// of the SSH2 (RFC 4716) form.
	pemBegin = regexp.MustCompile(`-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----|---- BEGIN (SSH2 ENCRYPTED PRIVATE KEY) ----`)
	// pemHeader is an armour header line (Proc-Type, DEK-Info, Version,
	// Comment) before the body.
	pemHeader = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*: `)
	// ageKey is an age identity: AGE-SECRET-KEY-1 and 58 Bech32 characters.
	ageKey = regexp.MustCompile(`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`)
	// awsSecret is an AWS secret access key written as a value.
	awsSecret = regexp.MustCompile(`(?i)aws_secret_access_key["']?\s*[=:]\s*["']?[A-Za-z0-9/+]{40}(?:[^A-Za-z0-9/+]|$)`)
	// The JSON keys of a Google Cloud service-account key, of gcloud's
	// application default credentials and of a Docker login.
	gcloudServiceAccount = regexp.MustCompile(`"type"\s*:\s*"service_account"`)
	gcloudPrivateKey     = regexp.MustCompile(`"private_key"\s*:\s*"-----BEGIN`)
	gcloudAuthorizedUser = regexp.MustCompile(`"type"\s*:\s*"authorized_user"`)
	gcloudRefreshToken   = regexp.MustCompile(`"refresh_token"\s*:\s*"[^"\s]{20,}"`)
	dockerAuths          = regexp.MustCompile(`"auths"\s*:\s*\{`)
	dockerAuth           = regexp.MustCompile(`"auth"\s*:\s*"[A-Za-z0-9+/]{8,}={0,2}"`)
)

// credentialScanner finds credentials in content written to it a chunk at
// a time, so that hashing and scanning share one read of each file. It
// cuts the content into segments at line ends and at the \n and \r
// escapes of string literals (a key inside JSON or Python source), and
// follows a private key block from its BEGIN line through a body of
// base64 lines to its matching END line: a text that only mentions
// "BEGIN PRIVATE KEY" does not count.
type credentialScanner struct {
	line []byte // the unfinished line carried over to the next Write

	// The open private key block: its END line (nil outside a block),
	// its label, the base64 characters of its body so far, whether the
	// body has started.
	end       []byte
	label     string
	body      int
	inBody    bool
	keyBlocks []string

	age, aws, putty, puttyPrivate                          bool
	serviceAccount, privateKey, authorizedUser, refreshTok bool
	auths, auth                                            bool
}

// Write scans p; it never fails.
func (s *credentialScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.line = append(s.line, p...)
			if len(s.line) >= maxLine {
				s.endLine()
			}
			break
		}
		if len(s.line) == 0 {
			s.splitLine(p[:i])
		} else {
			s.line = append(s.line, p[:i]...)
			s.endLine()
		}
		p = p[i+1:]
	}
	return n, nil
}

func (s *credentialScanner) endLine() {
	s.splitLine(s.line)
	s.line = s.line[:0]
}

// splitLine cuts a line into segments at carriage returns and at the \n
// and \r escapes of string literals.
func (s *credentialScanner) splitLine(line []byte) {
	from := 0
	for {
		i := bytes.IndexAny(line[from:], "\r\\")
		if i < 0 {
			s.segment(line)
			return
		}
		i += from
		switch {
		case line[i] == '\r':
			s.segment(line[:i])
			line, from = line[i+1:], 0
		case i+1 < len(line) && (line[i+1] == 'n' || line[i+1] == 'r'):
			s.segment(line[:i])
			line, from = line[i+2:], 0
		default:
			from = i + 1
		}
	}
}

// segment looks at one segment of the content.
func (s *credentialScanner) segment(line []byte) {
	if len(line) == 0 && s.end == nil {
		return
	}
	trimmed := bytes.TrimSpace(line)
	switch {
	case bytes.HasPrefix(trimmed, []byte("PuTTY-User-Key-File-")):
		s.putty = true
	case bytes.HasPrefix(trimmed, []byte("Private-Lines: ")):
		s.puttyPrivate = true
	}
	if !s.age && bytes.Contains(line, []byte("AGE-SECRET-KEY-1")) {
		s.age = ageKey.Match(line)
	}
	if bytes.IndexByte(line, '"') >= 0 {
		matches := func(seen *bool, key string, re *regexp.Regexp) {
			if !*seen && bytes.Contains(line, []byte(key)) {
				*seen = re.Match(line)
			}
		}
		matches(&s.serviceAccount, "service_account", gcloudServiceAccount)
		matches(&s.privateKey, `"private_key"`, gcloudPrivateKey)
		matches(&s.authorizedUser, "authorized_user", gcloudAuthorizedUser)
		matches(&s.refreshTok, `"refresh_token"`, gcloudRefreshToken)
		matches(&s.auths, `"auths"`, dockerAuths)
		matches(&s.auth, `"auth"`, dockerAuth)
	}
	if !s.aws && (bytes.Contains(line, []byte("aws_secret_access_key")) || bytes.Contains(line, []byte("AWS_SECRET_ACCESS_KEY"))) {
		s.aws = awsSecret.Match(line)
	}
	s.keyBlock(line)
}

// keyBlock follows private key blocks through one segment.
func (s *credentialScanner) keyBlock(line []byte) {
	for {
		if s.end == nil {
			if !bytes.Contains(line, []byte("BEGIN ")) {
				return
			}
			m := pemBegin.FindSubmatchIndex(line)
			if m == nil {
				return
			}
			if m[2] >= 0 {
				s.label = string(line[m[2]:m[3]])
				s.end = []byte("-----END " + s.label + "-----")
			} else {
				s.label = string(line[m[4]:m[5]])
				s.end = []byte("---- END " + s.label + " ----")
			}
			s.body, s.inBody = 0, false
			line = line[m[1]:]
			continue
		}
		if i := bytes.Index(line, s.end); i >= 0 {
			if s.blockLine(line[:i]) && s.body >= minKeyBody {
				s.keyBlocks = append(s.keyBlocks, s.label)
			}
			line = line[i+len(s.end):]
			s.end = nil
			continue
		}
		if !s.blockLine(line) {
			s.end = nil // not a key block after all; the segment may open one
			continue
		}
		return
	}
}

// blockLine takes one line inside a private key block and reports whether
// it fits there: empty, an armour header before the body, or base64. The
// quotes and punctuation of a string literal around it are ignored.
func (s *credentialScanner) blockLine(line []byte) bool {
	line = bytes.Trim(line, " \t\"'`+,;()[]{}\\")
	switch {
	case len(line) == 0:
		return true
	case !s.inBody && pemHeader.Match(line):
		return true
	}
	for _, c := range line {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	s.inBody = true
	s.body += len(line)
	return true
}

// result ends the scan and says what the content holds, or "".
func (s *credentialScanner) result() string {
	s.endLine()
	var found []string
	switch {
	case s.serviceAccount && s.privateKey:
		found = append(found, "a Google Cloud service-account key")
		s.keyBlocks = nil // the key block is that key's
	case s.authorizedUser && s.refreshTok:
		found = append(found, "Google Cloud user credentials (refresh_token)")
	}
	seen := map[string]bool{}
	for _, label := range s.keyBlocks {
		if !seen[label] {
			seen[label] = true
			found = append(found, fmt.Sprintf("a private key block (BEGIN %s)", label))
		}
	}
	if s.putty && s.puttyPrivate {
		found = append(found, "a PuTTY private key")
	}
	if s.age {
		found = append(found, "an age secret key (AGE-SECRET-KEY-1…)")
	}
	if s.aws {
		found = append(found, "an AWS secret access key")
	}
	if s.auths && s.auth {
		found = append(found, "a Docker registry login (auths)")
	}
	return strings.Join(found, "; ")
}

// credentialsError refuses the release for every credential that
// source.include does not name, or returns nil.
func credentialsError(dir string, found []Credential) error {
	var lines []string
	for _, c := range found {
		if c.Include == "" {
			lines = append(lines, c.Path+": "+c.Holds)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("source %s holds credentials, which must not go into a release:\n  %s\nremove them from the source, leave them out with source.exclude in the site file, or, if one truly belongs in the release, name it in source.include", dir, strings.Join(lines, "\n  "))
}
