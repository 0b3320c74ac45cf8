package confparse

import (
	"strings"
	"unicode/utf8"
)

// sdLongLineMax is LONG_LINE_MAX: the longest line, and continued line,
// systemd reads.
const sdLongLineMax = 1024 * 1024

// sdExecKeys are the settings parsed with config_parse_exec
// (src/core/load-fragment-gperf.gperf.in).
var sdExecKeys = map[string]bool{
	"Service.ExecCondition": true, "Service.ExecStartPre": true, "Service.ExecStart": true,
	"Service.ExecStartPost": true, "Service.ExecReload": true, "Service.ExecStop": true,
	"Service.ExecStopPost": true,
	"Socket.ExecStartPre":  true, "Socket.ExecStartPost": true, "Socket.ExecStopPre": true,
	"Socket.ExecStopPost": true,
}

// sdEnvironmentSections have Environment= parsed with config_parse_environ.
var sdEnvironmentSections = map[string]bool{"Service": true, "Socket": true, "Mount": true, "Swap": true}

// sdSpecifiers are the specifiers unit_full_printf resolves
// (src/core/unit-printf.c); any other letter or digit after % is an error.
const sdSpecifierChars = "iIjJnNpPfyYcrRCdELSthsaAbBHlqmMovwWgGuUTV"

// SystemdUnit parses a systemd unit file as systemd 252's config_parse
// (src/shared/conf-parser.c) reads it: read_line ends a line at \n, \r,
// \r\n, \n\r or NUL; a line whose first non-blank character is "#" or ";"
// is skipped, even between continued lines; a line ending in an odd
// number of backslashes continues on the next line, its last backslash
// becoming a space; a "[Section]" header must end in "]"; an assignment is
// Key=Value split at the first "=", both stripped of " \t\n\r"; a line
// without "=", or with nothing before it, is ignored; a line that is not
// valid UTF-8 makes the unit fail to load. Assignments before the first
// section, which systemd ignores, are listed without Context.
//
// Values are split as the setting's parser splits them. A command line
// (ExecStart= and the other settings of config_parse_exec) becomes one
// Directive per command (";" separates them): Prefix holds its leading
// -@:+! characters and Args its words, the executable's path first (with
// @ the next word is argv[0]), unquoted and unescaped by
// extract_first_word with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE: quotes may
// start anywhere in a word and escapes work inside them too (\a \b \f \n
// \r \t \v \\ \" \' \s \xNN \NNN \uNNNN \UNNNNNNNN; an unknown one is
// kept as written), "\;" is a literal ";". An unbalanced first word drops
// the line, as systemd does; a bad later word, a path that is not absolute
// or a plain name, or an unknown specifier fails the unit (unless the
// command has the - prefix, which drops it). Environment= keeps its valid
// NAME=VALUE words. In both, %% becomes % and specifiers stay as written.
// Any other setting has its value, as written, as its one word; an empty
// value, which resets a list, has none. Expands reports %-specifiers
// (resolved when the unit is loaded) and, in command lines without ":",
// $VAR and ${VAR} (resolved when the command runs; $VAR as a whole word
// splits into words there).
//
// Not modelled: which sections and settings the unit type has (systemd
// ignores unknown ones, and everything in an unknown section, with a
// warning), the rule that only Type=oneshot takes several ExecStart=,
// drop-ins and .include, the specifiers' values, and the checks a setting
// applies to its value beyond splitting.
func SystemdUnit(data []byte) ([]Directive, error) {
	p := sdParser{}
	pos, line := 0, 0
	var continuation *string
	bomSeen := false
	for {
		buf, next, ok, tooLong := sdReadLine(data, pos)
		if tooLong {
			return nil, syntaxErr("systemd", line, "Line too long")
		}
		if !ok {
			break
		}
		pos = next
		line++

		if l := strings.TrimLeft(buf, " \t\n\r"); l != "" && (l[0] == '#' || l[0] == ';') {
			continue
		}
		l := buf
		if !bomSeen && strings.HasPrefix(buf, "\xef\xbb\xbf") {
			l, bomSeen = buf[3:], true
		}
		var cur string
		if continuation != nil {
			if len(*continuation)+len(l) > sdLongLineMax {
				return nil, syntaxErr("systemd", line, "Continuation line too long")
			}
			cur = *continuation + l
		} else {
			cur = l
		}
		escaped := false
		for i := 0; i < len(cur); i++ {
			if escaped {
				escaped = false
			} else if cur[i] == '\\' {
				escaped = true
			}
		}
		if escaped {
			c := cur[:len(cur)-1] + " "
			continuation = &c
			continue
		}
		if err := p.parseLine(cur, line); err != nil {
			return nil, err
		}
		continuation = nil
	}
	if continuation != nil {
		line++
		if err := p.parseLine(*continuation, line); err != nil {
			return nil, err
		}
	}
	return p.out, nil
}

const (
	eolZero = 1 << iota
	eolTen
	eolThirteen
)

// sdReadLine is read_line: the line at pos without its end-of-line
// markers, and where the next one starts; ok is false at the end.
func sdReadLine(data []byte, pos int) (line string, next int, ok, tooLong bool) {
	if pos >= len(data) {
		return "", pos, false, false
	}
	var b []byte
	previous := 0
	for pos < len(data) {
		if len(b) >= sdLongLineMax {
			return "", pos, false, true
		}
		c := data[pos]
		eol := 0
		switch c {
		case '\n':
			eol = eolTen
		case '\r':
			eol = eolThirteen
		case 0:
			eol = eolZero
		}
		if previous&eolZero != 0 || (eol == 0 && previous != 0) || (eol != 0 && previous&eol != 0) {
			break
		}
		pos++
		if eol != 0 {
			previous |= eol
			continue
		}
		b = append(b, c)
	}
	return string(b), pos, true, false
}

type sdParser struct {
	section string
	in      bool // a section header was seen
	out     []Directive
}

func sdStrip(s string) string { return strings.Trim(s, " \t\n\r") }

// parseLine is parse_line for one logical line.
func (p *sdParser) parseLine(l string, line int) error {
	l = sdStrip(l)
	if l == "" {
		return nil
	}
	if !utf8.ValidString(l) {
		return syntaxErr("systemd", line, "String is not UTF-8 clean, ignoring assignment: %s", strings.ToValidUTF8(l, "\ufffd"))
	}
	if l[0] == '[' {
		if l[len(l)-1] != ']' || len(l) < 2 {
			return syntaxErr("systemd", line, "Invalid section header '%s'", l)
		}
		n := l[1 : len(l)-1]
		if !sdStringIsSafe(n) {
			return syntaxErr("systemd", line, "Bad characters in section header '%s'", l)
		}
		p.section, p.in = n, true
		return nil
	}
	key, value, ok := strings.Cut(l, "=")
	if !ok || key == "" {
		// "Missing '='" or "Missing key name before '='": ignored.
		return nil
	}
	key, value = sdStrip(key), sdStrip(value)
	var ctx []string
	if p.in {
		ctx = []string{p.section}
	}
	d := Directive{Context: ctx, Name: key, Raw: value, Line: line}
	switch {
	case sdExecKeys[p.section+"."+key]:
		return p.exec(d, value)
	case key == "Environment" && sdEnvironmentSections[p.section]:
		d.Args, d.Expands = sdEnvironment(value)
	default:
		if value != "" {
			d.Args = []string{value}
		}
		_, d.Expands, _ = sdSpecifiers(value)
	}
	p.out = append(p.out, d)
	return nil
}

// sdStringIsSafe is string_is_safe: no control characters, quotes,
// backslash or DEL.
func sdStringIsSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c > 0 && c < ' ') || strings.IndexByte("\"'\\\x7f", c) >= 0 {
			return false
		}
	}
	return true
}

// sdSpecifiers scans s as specifier_printf does. It returns s with %%
// turned into %, the specifiers left as written; whether s uses a
// specifier; and whether it uses an unknown one (an error).
func sdSpecifiers(s string) (resolved string, uses, unknown bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; {
		case c == '%':
			b.WriteByte('%')
			continue
		case strings.IndexByte(sdSpecifierChars, c) >= 0:
			uses = true
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			unknown = true
		}
		b.WriteString(s[i-1 : i+1])
	}
	return b.String(), uses, unknown
}

// sdEnvironment is config_parse_environ: the valid assignments, up to a
// word that does not parse (the rest of the line is then ignored).
func sdEnvironment(value string) ([]string, bool) {
	var words []string
	expands := false
	c := sdCursor{s: value}
	for {
		w, r := c.extract(false)
		if r <= 0 {
			return words, expands
		}
		w, uses, unknown := sdSpecifiers(w)
		if unknown {
			continue
		}
		expands = expands || uses
		if sdEnvAssignmentIsValid(w) {
			words = append(words, w)
		}
	}
}

// sdEnvAssignmentIsValid is env_assignment_is_valid without the size
// limits: NAME=VALUE with a name of letters, digits and _ that does not
// start with a digit, and a value in UTF-8.
func sdEnvAssignmentIsValid(w string) bool {
	name, value, ok := strings.Cut(w, "=")
	if !ok || name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return utf8.ValidString(value)
}

// exec is config_parse_exec: one Directive per command of the line.
func (p *sdParser) exec(d Directive, value string) error {
	if value == "" {
		p.out = append(p.out, d)
		return nil
	}
	fail := func(ignore bool, format string, args ...any) error {
		if ignore {
			return nil
		}
		return syntaxErr("systemd", d.Line, format, args...)
	}
	c := sdCursor{s: value}
	for semicolon := true; semicolon; {
		semicolon = false
		first, r := c.extractAndWarn()
		if r <= 0 {
			return nil
		}
		if first == ";" {
			semicolon = true
			continue
		}
		f, prefix := first, ""
		var ignore, argv0, noEnv, privileged, noSetuid, ambient bool
	prefixes:
		for f != "" {
			switch {
			case f[0] == '-' && !ignore:
				ignore = true
			case f[0] == '@' && !argv0:
				argv0 = true
			case f[0] == ':' && !noEnv:
				noEnv = true
			case f[0] == '+' && !privileged && !noSetuid && !ambient:
				privileged = true
			case f[0] == '!' && !privileged && !noSetuid && !ambient:
				noSetuid = true
			case f[0] == '!' && !privileged && !ambient:
				noSetuid, ambient = false, true
			default:
				break prefixes
			}
			prefix += f[:1]
			f = f[1:]
		}
		cmd := d
		cmd.Prefix = prefix
		f, uses, unknown := sdSpecifiers(f)
		if unknown {
			return fail(ignore, "Failed to resolve unit specifiers in '%s'", f)
		}
		cmd.Expands = uses
		switch {
		case f == "":
			return fail(ignore, "Empty path in command line: '%s'", d.Raw)
		case !sdStringIsSafe(f):
			return fail(ignore, "Executable name contains special characters: %s", f)
		case strings.HasSuffix(f, "/"):
			return fail(ignore, "Executable path specifies a directory: %s", f)
		case !sdPathValid(f):
			return fail(ignore, "Neither a valid executable name nor an absolute path: %s", f)
		}
		cmd.Args = []string{f}
		for c.s[c.i:] != "" && !c.null {
			rest := c.s[c.i:]
			if rest[0] == ';' && (len(rest) == 1 || strings.IndexByte(" \t\n\r", rest[1]) >= 0) {
				c.i++
				c.skipWhitespace()
				semicolon = true
				break
			}
			if strings.HasPrefix(rest, `\;`) && (len(rest) == 2 || strings.IndexByte(" \t\n\r", rest[2]) >= 0) {
				c.i += 2
				c.skipWhitespace()
				cmd.Args = append(cmd.Args, ";")
				continue
			}
			w, r := c.extractAndWarn()
			if r == 0 {
				break
			}
			if r < 0 {
				return fail(ignore, `Unbalanced quoting, ignoring: "%s"`, d.Raw)
			}
			w, uses, unknown := sdSpecifiers(w)
			if unknown {
				return fail(ignore, "Failed to resolve unit specifiers in %s", w)
			}
			cmd.Expands = cmd.Expands || uses
			cmd.Args = append(cmd.Args, w)
		}
		if argv0 && len(cmd.Args) < 2 {
			return fail(ignore, "Empty executable name or zeroeth argument: %s", d.Raw)
		}
		if !noEnv {
			for _, w := range cmd.Args {
				cmd.Expands = cmd.Expands || sdReplacesEnv(w)
			}
		}
		p.out = append(p.out, cmd)
	}
	return nil
}

// sdPathValid is path_is_valid for an absolute path (each component at
// most NAME_MAX bytes, all of it shorter than PATH_MAX) and
// filename_is_valid for a name.
func sdPathValid(p string) bool {
	if strings.HasPrefix(p, "/") {
		if len(p) >= 4096 {
			return false
		}
		for _, c := range strings.Split(p, "/") {
			if len(c) > 255 {
				return false
			}
		}
		return true
	}
	return p != "." && p != ".." && !strings.Contains(p, "/") && len(p) <= 255
}

// sdReplacesEnv reports whether replace_env_argv (src/basic/env-util.c)
// substitutes in the word: "$NAME" as the whole word, or ${NAME} in it.
func sdReplacesEnv(w string) bool {
	if w != "" && w[0] == '$' && (len(w) == 1 || (w[1] != '{' && w[1] != '$')) {
		return true
	}
	const (
		word = iota
		curly
		variable
	)
	state := word
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch state {
		case word:
			if c == '$' {
				state = curly
			}
		case curly:
			switch c {
			case '{':
				state = variable
			default:
				state = word
			}
		case variable:
			switch c {
			case '}':
				return true
			case ':':
				state = word
			}
		}
	}
	return false
}

// sdCursor is the const char **p extract_first_word advances; null is
// the NULL it is set to at the end of the string.
type sdCursor struct {
	s    string
	i    int
	null bool
}

func (c *sdCursor) at(i int) byte {
	if i < len(c.s) {
		return c.s[i]
	}
	return 0
}

func (c *sdCursor) skipWhitespace() {
	for c.i < len(c.s) && strings.IndexByte(" \t\n\r", c.s[c.i]) >= 0 {
		c.i++
	}
}

// extractAndWarn is extract_first_word_and_warn: on an invalid escape it
// tries again keeping the escape as written.
func (c *sdCursor) extractAndWarn() (string, int) {
	save := *c
	w, r := c.extract(false)
	if r >= 0 {
		return w, r
	}
	*c = save
	return c.extract(true)
}

// extract is extract_first_word with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE,
// and EXTRACT_UNESCAPE_RELAX when relax is set, over WHITESPACE. It
// returns 1 with a word, 0 at the end and -1 for a syntax error (EINVAL).
func (c *sdCursor) extract(relax bool) (string, int) {
	isSep := func(ch byte) bool { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' }
	if c.null {
		return "", 0
	}
	for {
		ch := c.at(c.i)
		if ch == 0 {
			c.null = true
			return "", 0
		}
		if !isSep(ch) {
			break
		}
		c.i++
	}
	var s []byte
	var quote byte
	backslash := false
	for i := c.i; ; i++ {
		ch := c.at(i)
		switch {
		case backslash:
			if ch == 0 {
				if relax && quote == 0 {
					s = append(s, '\\')
					c.null = true
					return string(s), 1
				}
				return "", -1
			}
			if n, u, eight := sdCunescapeOne(c.s[i:]); n > 0 {
				i += n - 1
				if eight {
					s = append(s, byte(u))
				} else {
					s = sdAppendUnichar(s, u)
				}
			} else if relax {
				s = append(s, '\\', ch)
			} else {
				return "", -1
			}
			backslash = false
		case quote != 0:
			for ; ; i++ {
				ch = c.at(i)
				if ch == 0 {
					return "", -1
				}
				if ch == quote {
					quote = 0
					break
				}
				if ch == '\\' {
					backslash = true
					break
				}
				s = append(s, ch)
			}
		default:
			for ; ; i++ {
				ch = c.at(i)
				if ch == 0 {
					c.null = true
					return string(s), 1
				}
				if ch == '\'' || ch == '"' {
					quote = ch
					break
				}
				if ch == '\\' {
					backslash = true
					break
				}
				if isSep(ch) {
					for {
						i++
						ch = c.at(i)
						if ch == 0 {
							c.null = true
							return string(s), 1
						}
						if !isSep(ch) {
							break
						}
					}
					c.i = i
					return string(s), 1
				}
				s = append(s, ch)
			}
		}
	}
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// sdCunescapeOne is cunescape_one (src/basic/escape.c) without NULs: the
// length of the escape after the backslash (0 if invalid), the character
// and whether it is a byte to copy as is.
func sdCunescapeOne(p string) (int, rune, bool) {
	at := func(i int) byte {
		if i < len(p) {
			return p[i]
		}
		return 0
	}
	hex := func(from, n int) (rune, bool) {
		var v rune
		for i := from; i < from+n; i++ {
			h := unhex(at(i))
			if h < 0 {
				return 0, false
			}
			v = v<<4 | rune(h)
		}
		return v, true
	}
	switch c := at(0); c {
	case 'a':
		return 1, '\a', false
	case 'b':
		return 1, '\b', false
	case 'f':
		return 1, '\f', false
	case 'n':
		return 1, '\n', false
	case 'r':
		return 1, '\r', false
	case 't':
		return 1, '\t', false
	case 'v':
		return 1, '\v', false
	case '\\', '"', '\'':
		return 1, rune(c), false
	case 's':
		return 1, ' ', false
	case 'x':
		v, ok := hex(1, 2)
		if !ok || v == 0 {
			return 0, 0, false
		}
		return 3, v, true
	case 'u':
		v, ok := hex(1, 4)
		if !ok || v == 0 {
			return 0, 0, false
		}
		return 5, v, false
	case 'U':
		v, ok := hex(1, 8)
		if !ok || v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) {
			return 0, 0, false
		}
		return 9, v, false
	case '0', '1', '2', '3', '4', '5', '6', '7':
		var v rune
		for i := 0; i < 3; i++ {
			d := at(i)
			if d < '0' || d > '7' {
				return 0, 0, false
			}
			v = v<<3 | rune(d-'0')
		}
		if v == 0 || v > 255 {
			return 0, 0, false
		}
		return 3, v, true
	}
	return 0, 0, false
}

// sdAppendUnichar is utf8_encode_unichar, which encodes surrogates too.
func sdAppendUnichar(s []byte, u rune) []byte {
	switch {
	case u < 0x80:
		return append(s, byte(u))
	case u < 0x800:
		return append(s, byte(0xc0|u>>6), byte(0x80|u&0x3f))
	case u < 0x10000:
		return append(s, byte(0xe0|u>>12), byte(0x80|(u>>6)&0x3f), byte(0x80|u&0x3f))
	}
	return append(s, byte(0xf0|u>>18), byte(0x80|(u>>12)&0x3f), byte(0x80|(u>>6)&0x3f), byte(0x80|u&0x3f))
}
