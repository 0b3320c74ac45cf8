package confparse

import "strings"

// apVarbufMaxLen is VARBUF_MAX_LEN of server/config.c: the longest logical
// line httpd reads from a configuration file.
const apVarbufMaxLen = 16 * 1024 * 1024

// Apache parses an Apache httpd configuration file the way httpd 2.4's
// ap_build_config (server/config.c) reads it: lines from ap_cfg_getline
// (server/util.c), where a backslash right before the newline (or CR LF)
// joins the next line, even in a comment and even after another
// backslash, and a NUL ends the line; leading and trailing whitespace
// removed; a line whose first character is "#" is a comment, and "#"
// anywhere else is ordinary; the first word is the directive, with a
// trailing ">" removed; "<Name args>" opens a section and "</Name>" closes
// it, matched without regard to case. Arguments are split with
// ap_getword_conf: whitespace separates words; a word that starts with a
// single or double quote runs to the matching quote (\quote and \\
// unescaped in it; an unmatched quote runs to the end of the line) and the
// next word starts right after it; outside quotes only \\ is unescaped and
// a quote is ordinary. A line that starts with an empty quoted word is
// skipped, as httpd does. A section's arguments are the text up to its
// last ">", as the core section handlers take them; Raw keeps the text as
// httpd stores it, ">" included. Context holds the section names without
// "<". Errors are httpd's: a section without ">", a closing tag without
// ">", for another section or for none, a section left open.
//
// Not modelled: ${VAR} substitution, which httpd performs on the whole
// line before splitting it (Expands reports it; Define changes it),
// which directives and sections exist, <IfModule>, <IfDefine> and the
// other conditional sections (their contents are listed as if the
// condition held), Include, <Macro>, and directives such as RewriteRule,
// Require expressions or <If> that split their arguments themselves.
func Apache(data []byte) ([]Directive, error) {
	type section struct {
		name string
		line int
	}
	var out []Directive
	var open []section
	context := func() []string {
		var c []string
		for _, s := range open {
			c = append(c, s.name)
		}
		return c
	}
	lr := apLineReader{data: data}
	for {
		l, ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		line := lr.line
		if l == "" || l[0] == '#' {
			continue
		}
		expands := apResolvesEnv(l)
		name, args := apGetwordConf(l)
		if name == "" {
			// A line that starts with "" or '': httpd skips it.
			continue
		}
		if len(name) < 2 || name[1] != '/' {
			name = strings.TrimSuffix(name, ">")
			if strings.HasPrefix(name, "<") && args == "" {
				args = ">"
			}
		}
		if !strings.HasPrefix(name, "<") {
			out = append(out, Directive{Context: context(), Name: name, Args: apWords(args), Raw: args, Line: line, Expands: expands})
			continue
		}
		if len(name) < 2 || name[1] != '/' {
			gt := strings.LastIndexByte(args, '>')
			if gt < 0 {
				return nil, syntaxErr("apache", line, "%s> directive missing closing '>'", name)
			}
			out = append(out, Directive{Context: context(), Name: name[1:], Args: apWords(args[:gt]), Raw: args, Line: line, Block: true, Expands: expands})
			open = append(open, section{name[1:], line})
			continue
		}
		if len(open) == 0 {
			return nil, syntaxErr("apache", line, "%s without matching <%s section", name, name[2:])
		}
		if !strings.HasSuffix(name, ">") {
			return nil, syntaxErr("apache", line, "%s> directive missing closing '>'", name)
		}
		parent := open[len(open)-1].name
		if !strings.EqualFold(name[2:len(name)-1], parent) {
			return nil, syntaxErr("apache", line, "Expected </%s> but saw %s", parent, name)
		}
		open = open[:len(open)-1]
	}
	if len(open) > 0 {
		s := open[len(open)-1]
		return nil, syntaxErr("apache", s.line, "<%s> was not closed.", s.name)
	}
	return out, nil
}

// apLineReader is ap_varbuf_cfg_getline over a file opened with
// ap_pcfg_openfile, whose getstr reads up to and including a newline.
type apLineReader struct {
	data []byte
	pos  int
	line int
}

// next returns the next logical line, trimmed, with the reader's line
// number at the last physical line it used; ok is false at the end.
func (r *apLineReader) next() (string, bool, error) {
	var buf []byte
	continued := false
	for {
		r.line++
		if r.pos >= len(r.data) {
			if continued {
				break
			}
			return "", false, nil
		}
		end := r.pos
		for end < len(r.data) && r.data[end] != '\n' {
			end++
		}
		if end < len(r.data) {
			end++ // the newline
		}
		chunk := r.data[r.pos:end]
		r.pos = end
		// The line is a C string: a NUL ends it, and what follows up to
		// the newline is lost with the continuation check.
		if i := strings.IndexByte(string(chunk), 0); i >= 0 {
			chunk = chunk[:i]
		}
		buf = append(buf, chunk...)
		if len(buf) > apVarbufMaxLen {
			return "", false, syntaxErr("apache", r.line, "Line too long")
		}
		if n := len(buf); n > 0 && buf[n-1] == '\n' {
			cp := n - 1
			if cp > 0 && buf[cp-1] == '\r' {
				cp--
			}
			if cp > 0 && buf[cp-1] == '\\' {
				buf = buf[:cp-1]
				continued = true
				continue
			}
		}
		break
	}
	return strings.TrimFunc(string(buf), func(c rune) bool { return c < 0x80 && apIsSpace(byte(c)) }), true, nil
}

// apIsSpace is apr_isspace in the C locale.
func apIsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// apGetwordConf is ap_getword_conf: the first word of line and what
// follows it with the whitespace after the word skipped.
func apGetwordConf(line string) (word, rest string) {
	s := strings.TrimLeftFunc(line, func(c rune) bool { return c < 0x80 && apIsSpace(byte(c)) })
	if s == "" {
		return "", ""
	}
	var end int
	if q := s[0]; q == '"' || q == '\'' {
		e := 1
		for e < len(s) && s[e] != q {
			if s[e] == '\\' && e+1 < len(s) && (s[e+1] == q || s[e+1] == '\\') {
				e += 2
			} else {
				e++
			}
		}
		word = apSubstringConf(s, 1, e, q)
		if e < len(s) && s[e] == q {
			e++
		}
		end = e
	} else {
		for end < len(s) && !apIsSpace(s[end]) {
			end++
		}
		word = apSubstringConf(s, 0, end, 0)
	}
	for end < len(s) && apIsSpace(s[end]) {
		end++
	}
	return word, s[end:]
}

// apSubstringConf is substring_conf: s[from:to] with \\ and, in quotes,
// \quote unescaped.
func apSubstringConf(s string, from, to int, quote byte) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '\\' || (quote != 0 && s[i+1] == quote)) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// apWords splits arguments with ap_getword_conf until nothing is left; a
// quoted empty string is an empty word.
func apWords(args string) []string {
	var words []string
	args = strings.TrimLeftFunc(args, func(c rune) bool { return c < 0x80 && apIsSpace(byte(c)) })
	for args != "" {
		var w string
		w, args = apGetwordConf(args)
		words = append(words, w)
	}
	return words
}

// apResolvesEnv reports a ${NAME} that ap_resolve_env would look up.
func apResolvesEnv(l string) bool {
	i := strings.Index(l, "${")
	return i >= 0 && strings.IndexByte(l[i+2:], '}') >= 0
}
