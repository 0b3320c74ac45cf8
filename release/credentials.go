package release

import (
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode/utf8"
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
	sum, size, holds, _, err = scanFileLimits(r, rel)
	return sum, size, holds, err
}

// scanFileLimits is scanFile that also returns what the scan could not
// open within its bounds (a compression bomb, an archive nested too
// deep), "" when it read everything. Such a file is packaged: the scan
// guards against keys committed by mistake, and a large archive (a wheel
// of the wheelhouse) is common; mage release names it.
func scanFileLimits(r io.Reader, rel string) (sum string, size int64, holds, limits string, err error) {
	h := sha256.New()
	var s credentialScanner
	size, err = io.Copy(io.MultiWriter(h, &s), r)
	found := s.findings() // also when the read failed: it stops the scan's goroutines
	if err != nil {
		return "", 0, "", "", err
	}
	var keys, unread []string
	if byName := credentialByName(rel); byName != "" {
		keys = append(keys, byName)
	}
	for _, f := range found {
		if rest, ok := strings.CutPrefix(f, unscannedMark); ok {
			unread = append(unread, rest)
		} else {
			keys = append(keys, f)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), size, strings.Join(keys, "; "), strings.Join(unread, "; "), nil
}

// unscannedMark starts a finding that is no credential but a part of the
// content the scan did not read (see unscanned).
const unscannedMark = "unscanned: "

// unscanned is the finding of content the scan's bounds kept it from
// reading.
func unscanned(format string, args ...any) string {
	return unscannedMark + fmt.Sprintf(format, args...)
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
// base64 lines to its matching END line, each line possibly behind the
// comment marks of its BEGIN line: a text that only mentions "BEGIN
// PRIVATE KEY" does not count.
//
// It also looks through what hides a key from that reading, in the same
// pass: the content decoded from UTF-16, private key blocks encoded in
// base64 (found by how their BEGIN line looks in base64, and decoded from
// there on), and the content of a gzip or bzip2 stream or of the members
// of a zip archive, each scanned the same way by a scanner of its own,
// within bounds (see maxExpanded, maxLayers, maxEncodings).
type credentialScanner struct {
	line []byte // the unfinished line carried over to the next Write

	// The open private key block: its END line (nil outside a block),
	// its label, the base64 characters of its body so far, whether the
	// body has started, the comment marks before its BEGIN line (taken
	// off its other lines) and whether a line had them.
	end       []byte
	label     string
	body      int
	inBody    bool
	marks     string
	commented bool
	keyBlocks []keyBlock

	// layers and encodings count the containers (compressed streams,
	// archives) and the encodings (UTF-16, base64) the content sits in;
	// expansion bounds what decompression yields for the whole file.
	layers, encodings int
	expansion         *expansion
	// head holds the first bytes until they say what the content is
	// (sniffed); view then scans the content decoded, decompressed or
	// unpacked. deep names a container found too deep to open.
	head    []byte
	sniffed bool
	view    contentView
	deep    string
	base64  base64Finder

	age, aws, putty, puttyPrivate                          bool
	serviceAccount, privateKey, authorizedUser, refreshTok bool
	auths, auth                                            bool
}

// keyBlock is a private key block found: its label and whether its lines
// were behind comment marks.
type keyBlock struct {
	label     string
	commented bool
}

// Write scans p; it never fails.
func (s *credentialScanner) Write(p []byte) (int, error) {
	n := len(p)
	s.sniff(p)
	if s.encodings < maxEncodings {
		s.base64.write(s, p)
	}
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
			s.marks, s.commented = commentMarks(line[:m[0]]), false
			line = line[m[1]:]
			continue
		}
		if i := bytes.Index(line, s.end); i >= 0 {
			if s.blockLine(line[:i]) && s.body >= minKeyBody {
				s.keyBlocks = append(s.keyBlocks, keyBlock{s.label, s.commented})
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

// commentChars are the characters of comment marks in common languages
// and files: #, //, /* and *, ;, --, %, !, > and |, ::.
const commentChars = "#/*;-%!>|:"

// commentMarks returns the characters of the comment marks that stand
// before a BEGIN line's marker (prefix), or "" when prefix is not only
// comment marks and blanks.
func commentMarks(prefix []byte) string {
	t := bytes.TrimSpace(prefix)
	var marks []byte
	for _, c := range t {
		if strings.IndexByte(commentChars, c) < 0 {
			return ""
		}
		if bytes.IndexByte(marks, c) < 0 {
			marks = append(marks, c)
		}
	}
	return string(marks)
}

// blockLine takes one line inside a private key block and reports whether
// it fits there: empty, an armour header before the body, or base64. The
// quotes and punctuation of a string literal around it are ignored.
func (s *credentialScanner) blockLine(line []byte) bool {
	if s.marks != "" {
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && strings.IndexByte(s.marks, t[0]) >= 0 {
			line = bytes.TrimLeft(t, s.marks+" \t")
			s.commented = true
		}
	}
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

// result ends the scan and says what the content holds, or "", each
// part it could not read included (marked unscanned).
func (s *credentialScanner) result() string {
	return strings.Join(s.findings(), "; ")
}

// findings ends the scan and lists what the content holds: what its text
// holds as it reads, then what was hidden, each saying how, unless its
// text already shows it.
func (s *credentialScanner) findings() []string {
	s.endLine()
	if !s.sniffed {
		s.decide()
	}
	var hidden []string
	if s.view != nil {
		hidden = append(hidden, s.view.finish()...)
	}
	hidden = append(hidden, s.base64.finish()...)

	var found []string
	switch {
	case s.serviceAccount && s.privateKey:
		found = append(found, "a Google Cloud service-account key")
		s.keyBlocks = nil // the key block is that key's
	case s.authorizedUser && s.refreshTok:
		found = append(found, "Google Cloud user credentials (refresh_token)")
	}
	for _, b := range s.keyBlocks {
		f := fmt.Sprintf("a private key block (BEGIN %s)", b.label)
		if b.commented {
			f += ", behind comment marks"
		}
		found = append(found, f)
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
	if s.deep != "" {
		found = append(found, unscanned("a %s nested deeper than the scan opens", s.deep))
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range found {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, h := range hidden {
		what, _, _ := strings.Cut(h, ", ")
		if !seen[h] && !seen[what] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
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

// Bounds of what the scan opens inside one file of the source: a
// compression bomb or a deep nest stops it, and the file is reported
// rather than packaged unseen.
const (
	// maxExpanded bounds the bytes decompression yields for one file,
	// all its layers together.
	maxExpanded = 64 << 20
	// maxLayers is how many compressed streams and archives the scan
	// opens inside one another.
	maxLayers = 2
	// maxEncodings is how many encodings (UTF-16, base64) the scan
	// decodes inside one another.
	maxEncodings = 2
	// maxBase64Block bounds the bytes decoded from one base64 blob, from
	// its BEGIN marker on: key files are far shorter.
	maxBase64Block = 1 << 20
	// sniffLen is how many first bytes decide what a content is.
	sniffLen = 64
	// maxZipMembers bounds the members of a zip archive the scan opens.
	maxZipMembers = 1 << 16
	// spoolInMemory is how much of a zip archive is kept in memory
	// before it is spooled to a temporary file: zip is read from its end.
	spoolInMemory = 8 << 20
)

// contentView scans the content of a file as something else than its
// bytes: decoded, decompressed or unpacked.
type contentView interface {
	// write takes the next bytes of the file.
	write(p []byte)
	// finish ends the scan and lists what was found, each saying how it
	// was hidden.
	finish() []string
}

// expansion is what decompression may still yield for one file of the
// source, shared by the scanners of every layer in it (some run in
// goroutines of their own).
type expansion struct{ left atomic.Int64 }

// take counts up to n bytes against the bound and returns how many fit.
func (e *expansion) take(n int) int {
	for {
		left := e.left.Load()
		k := min(int64(n), left)
		if e.left.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

// errTooLarge stops a decompression at the bound.
var errTooLarge = errors.New("expands past the scan's bound")

// tooLarge is the finding of a container that expands past the bound.
func tooLarge(kind string) string {
	return unscanned("a %s that expands past %d MiB, too large to scan for keys", kind, maxExpanded>>20)
}

// boundedWriter writes to w what the expansion bound lets through and
// fails past it.
type boundedWriter struct {
	w io.Writer
	e *expansion
}

func (b boundedWriter) Write(p []byte) (int, error) {
	n := b.e.take(len(p))
	b.w.Write(p[:n])
	if n < len(p) {
		return n, errTooLarge
	}
	return len(p), nil
}

// child is a scanner for content inside this one: in one more container
// (layer) or one more encoding, sharing the expansion bound.
func (s *credentialScanner) child(layer, encoding int) *credentialScanner {
	if s.expansion == nil {
		s.expansion = &expansion{}
		s.expansion.left.Store(maxExpanded)
	}
	return &credentialScanner{layers: s.layers + layer, encodings: s.encodings + encoding, expansion: s.expansion}
}

// suffixed adds how the findings were hidden to each.
func suffixed(found []string, how string) []string {
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f + ", " + how
	}
	return out
}

// sniff holds the first sniffLen bytes, then decides what the content is
// and hands every byte to its view.
func (s *credentialScanner) sniff(p []byte) {
	if !s.sniffed {
		need := sniffLen - len(s.head)
		if len(p) < need {
			s.head = append(s.head, p...)
			return
		}
		s.head = append(s.head, p[:need]...)
		p = p[need:]
		s.decide()
	}
	if s.view != nil && len(p) > 0 {
		s.view.write(p)
	}
}

// decide picks the view of the content from its first bytes: a gzip or
// bzip2 stream, a zip archive, UTF-16 text, or none.
func (s *credentialScanner) decide() {
	s.sniffed = true
	head := s.head
	s.head = nil
	kind := containerKind(head)
	switch {
	case kind != "" && s.layers >= maxLayers:
		s.deep = kind
	case kind == "gzip stream":
		s.view = s.stream(kind, "gzip-compressed", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) })
	case kind == "bzip2 stream":
		s.view = s.stream(kind, "bzip2-compressed", func(r io.Reader) (io.Reader, error) { return bzip2.NewReader(r), nil })
	case kind == "zip archive":
		s.view = &zipView{s: s}
	case s.encodings < maxEncodings:
		if bigEndian, ok := utf16Order(head); ok {
			s.view = &utf16View{bigEndian: bigEndian, nested: s.child(0, 1)}
		}
	}
	if s.view != nil {
		s.view.write(head)
	}
}

// containerKind names the container whose magic bytes start head, or "".
func containerKind(head []byte) string {
	switch {
	case len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8:
		return "gzip stream"
	case len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' && bytes.Equal(head[4:10], []byte("\x31\x41\x59\x26\x53\x59")):
		return "bzip2 stream"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "zip archive"
	}
	return ""
}

// utf16Order reports whether head starts UTF-16 text, and in which byte
// order: a byte order mark, or every other byte zero (ASCII text in
// UTF-16) in at least 16 bytes.
func utf16Order(head []byte) (bigEndian, ok bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0xff, 0xfe}):
		return false, true
	case bytes.HasPrefix(head, []byte{0xfe, 0xff}):
		return true, true
	}
	n := len(head) &^ 1
	if n < 16 {
		return false, false
	}
	zeroEven, zeroOdd := 0, 0
	for i := 0; i < n; i += 2 {
		if head[i] == 0 {
			zeroEven++
		}
		if head[i+1] == 0 {
			zeroOdd++
		}
	}
	switch half := n / 2; {
	case zeroOdd == half && zeroEven == 0:
		return false, true
	case zeroEven == half && zeroOdd == 0:
		return true, true
	}
	return false, false
}

// utf16View scans UTF-16 text decoded to UTF-8.
type utf16View struct {
	bigEndian bool
	carry     []byte // an odd byte left from the last write
	buf       []byte
	nested    *credentialScanner
}

func (u *utf16View) write(p []byte) {
	if len(u.carry) > 0 {
		p = append(u.carry, p...)
		u.carry = nil
	}
	out := u.buf[:0]
	i := 0
	for ; i+1 < len(p); i += 2 {
		c := uint16(p[i]) | uint16(p[i+1])<<8
		if u.bigEndian {
			c = uint16(p[i])<<8 | uint16(p[i+1])
		}
		if c < utf8.RuneSelf {
			out = append(out, byte(c))
		} else {
			out = utf8.AppendRune(out, rune(c)) // a lone surrogate becomes U+FFFD
		}
	}
	if i < len(p) {
		u.carry = []byte{p[i]}
	}
	u.buf = out
	u.nested.Write(out)
}

func (u *utf16View) finish() []string { return suffixed(u.nested.findings(), "UTF-16-encoded") }

// streamView scans a compressed stream decompressed: a goroutine reads
// it through a pipe as the file is read, within the expansion bound.
type streamView struct {
	pw     *io.PipeWriter
	closed bool
	done   chan struct{}
	found  []string
}

// errStopped tells the writer of a stream that it is read no more.
var errStopped = errors.New("stream scanned")

// stream starts the scan of a compressed stream of kind, opened by open.
func (s *credentialScanner) stream(kind, how string, open func(io.Reader) (io.Reader, error)) *streamView {
	nested := s.child(1, 0)
	pr, pw := io.Pipe()
	v := &streamView{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		r, err := open(pr)
		if err == nil {
			_, err = io.Copy(boundedWriter{nested, nested.expansion}, r)
		}
		pr.CloseWithError(errStopped)
		v.found = suffixed(nested.findings(), how)
		if errors.Is(err, errTooLarge) {
			v.found = append(v.found, tooLarge(kind))
		}
	}()
	return v
}

func (v *streamView) write(p []byte) {
	if !v.closed {
		if _, err := v.pw.Write(p); err != nil {
			v.closed = true // the stream ended or broke: the rest is not part of it
		}
	}
}

func (v *streamView) finish() []string {
	v.pw.Close()
	<-v.done
	return v.found
}

// zipView keeps a zip archive as it is read and, at its end, scans its
// members decompressed, each with the scanner of a member (named by its
// name too), within the expansion bound.
type zipView struct {
	s     *credentialScanner
	mem   []byte
	file  *os.File
	size  int64
	spool error
}

func (z *zipView) write(p []byte) {
	if z.spool != nil {
		return
	}
	if z.file == nil && len(z.mem)+len(p) > spoolInMemory {
		f, err := os.CreateTemp("", "djship-scan-*")
		if err == nil {
			os.Remove(f.Name()) // gone when closed
			_, err = f.Write(z.mem)
		}
		if err != nil {
			z.spool = err
			return
		}
		z.file, z.mem = f, nil
	}
	if z.file != nil {
		if _, err := z.file.Write(p); err != nil {
			z.spool = err
		}
	} else {
		z.mem = append(z.mem, p...)
	}
	z.size += int64(len(p))
}

func (z *zipView) finish() []string {
	var ra io.ReaderAt = bytes.NewReader(z.mem)
	if z.file != nil {
		defer z.file.Close()
		ra = z.file
	}
	if z.spool != nil {
		return []string{unscanned("a zip archive the scan could not keep to read (%v)", z.spool)}
	}
	r, err := zip.NewReader(ra, z.size)
	if errors.Is(err, zip.ErrInsecurePath) {
		err = nil // names with .. are read like the others
	}
	if err != nil {
		return nil // not a zip archive after all
	}
	if len(r.File) > maxZipMembers {
		return []string{unscanned("a zip archive of more than %d members, too many to scan for keys", maxZipMembers)}
	}
	var found []string
	for _, f := range r.File {
		if f.FileInfo().IsDir() {
			continue
		}
		how := fmt.Sprintf("in zip member %q", f.Name)
		if holds := credentialByName(f.Name); holds != "" {
			found = append(found, holds+", "+how)
		}
		rc, err := f.Open()
		if err != nil {
			continue // an encrypted member, or a method Go does not read
		}
		nested := z.s.child(1, 0)
		_, err = io.Copy(boundedWriter{nested, nested.expansion}, rc)
		rc.Close()
		found = append(found, suffixed(nested.findings(), how)...)
		if errors.Is(err, errTooLarge) {
			return append(found, tooLarge("zip archive"))
		}
	}
	return found
}

// base64Marker is how the first words of a BEGIN line ("-----BEGIN ",
// "---- BEGIN ") look in base64 at one of the three alignments of the
// text to base64's 3-byte groups: text holds the characters that depend
// on those words alone, and lead is how many characters of their 4-
// character group come before them.
type base64Marker struct {
	text []byte
	lead int
}

// base64Markers are the markers of both BEGIN forms at the three
// alignments, in the standard and the URL alphabets.
var base64Markers = func() []base64Marker {
	var markers []base64Marker
	seen := map[string]bool{}
	for _, begin := range []string{"-----BEGIN ", "---- BEGIN "} {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			for a := 0; a < 3; a++ {
				e := enc.EncodeToString(append(make([]byte, a), begin...))
				// Character j stands for bits [6j, 6j+6) of the input; the
				// words are bits [8a, 8(a+len)).
				first, last := (8*a+5)/6, 8*(a+len(begin))/6
				if text := e[first:last]; !seen[text] {
					seen[text] = true
					markers = append(markers, base64Marker{[]byte(text), first % 4})
				}
			}
		}
	}
	return markers
}()

// base64 character classes beyond the 64 values.
const (
	b64Stop = 0xff // ends a run of base64
	b64Skip = 0xfe // a line end, space or tab: skipped inside a run
	b64Pad  = 0xfd // = ends a blob
)

// b64Values maps a byte to its value in base64 (either alphabet) or its
// class.
var b64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Stop
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	t['-'], t['_'] = 62, 63
	t['\r'], t['\n'], t[' '], t['\t'] = b64Skip, b64Skip, b64Skip, b64Skip
	t['='] = b64Pad
	return t
}()

// base64Finder finds private key blocks encoded in base64 without
// decoding the whole content: it follows runs of base64 characters
// (across line ends, spaces and tabs, so a blob wrapped and indented is
// one run), watches each for a marker (see base64Markers), and decodes
// the run from the marker's group on, at most maxBase64Block bytes, into
// a scanner of its own.
type base64Finder struct {
	window []byte // the current run's last characters
	dec    *base64Decoder
	found  []string
}

// maxMarker is the longest marker's length.
var maxMarker = func() int {
	n := 0
	for _, m := range base64Markers {
		n = max(n, len(m.text)+m.lead)
	}
	return n
}()

// markerEnds are the last characters of the markers: only a character
// among them can complete one.
var markerEnds = func() (t [256]bool) {
	for _, m := range base64Markers {
		t[m.text[len(m.text)-1]] = true
	}
	return t
}()

func (f *base64Finder) write(s *credentialScanner, p []byte) {
	for len(p) > 0 {
		if f.dec != nil {
			n, done := f.dec.feed(p)
			p = p[n:]
			if done {
				f.endBlock()
			}
			continue
		}
		i := f.search(s, p)
		p = p[i:]
	}
}

// search reads p for a marker and returns how much of it was read: all of
// it, or up to the marker's end, where decoding has started.
func (f *base64Finder) search(s *credentialScanner, p []byte) int {
	for i, c := range p {
		switch v := b64Values[c]; v {
		case b64Skip:
			continue
		case b64Stop, b64Pad:
			f.window = f.window[:0]
			continue
		}
		if len(f.window) >= 4*maxMarker {
			f.window = append(f.window[:0], f.window[len(f.window)-maxMarker:]...)
		}
		f.window = append(f.window, c)
		if !markerEnds[c] {
			continue
		}
		for _, m := range base64Markers {
			start := len(f.window) - len(m.text) - m.lead
			if start >= 0 && bytes.HasSuffix(f.window, m.text) {
				f.dec = &base64Decoder{nested: s.child(0, 1)}
				f.dec.feed(f.window[start:])
				f.window = f.window[:0]
				return i + 1
			}
		}
	}
	return len(p)
}

// endBlock ends the blob being decoded and takes what its scan found.
func (f *base64Finder) endBlock() {
	f.dec.flush()
	f.found = append(f.found, suffixed(f.dec.nested.findings(), "base64-encoded")...)
	f.dec = nil
}

func (f *base64Finder) finish() []string {
	if f.dec != nil {
		f.endBlock()
	}
	return f.found
}

// base64Decoder decodes a run of base64 into its scanner.
type base64Decoder struct {
	quad   [4]byte
	n      int
	out    []byte
	total  int
	nested *credentialScanner
}

// feed decodes base64 characters from p until the run ends (a character
// outside base64, or =) or the bound is reached, and returns how many
// bytes it read and whether the blob ended.
func (d *base64Decoder) feed(p []byte) (int, bool) {
	for i, c := range p {
		v := b64Values[c]
		switch v {
		case b64Skip:
			continue
		case b64Stop:
			return i, true
		case b64Pad:
			return i + 1, true
		}
		d.quad[d.n] = v
		d.n++
		if d.n == 4 {
			d.out = append(d.out, d.quad[0]<<2|d.quad[1]>>4, d.quad[1]<<4|d.quad[2]>>2, d.quad[2]<<6|d.quad[3])
			d.n = 0
			if len(d.out) >= 4096 {
				d.emit()
				if d.total >= maxBase64Block {
					return i + 1, true
				}
			}
		}
	}
	d.emit()
	return len(p), false
}

// flush decodes the last, partial group and hands on what is left.
func (d *base64Decoder) flush() {
	switch d.n {
	case 2:
		d.out = append(d.out, d.quad[0]<<2|d.quad[1]>>4)
	case 3:
		d.out = append(d.out, d.quad[0]<<2|d.quad[1]>>4, d.quad[1]<<4|d.quad[2]>>2)
	}
	d.n = 0
	d.emit()
}

func (d *base64Decoder) emit() {
	if len(d.out) > 0 {
		d.nested.Write(d.out)
		d.total += len(d.out)
		d.out = d.out[:0]
	}
}
