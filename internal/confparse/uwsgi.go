package confparse

import "strings"

// uwsgiMagic are the letters of uWSGI's magic variables that stand for a
// value (config_magic_table_fill and uwsgi_setup in core/uwsgi.c of uWSGI
// 2.0): %o %p %s %d %n %e %c %x %0-%9 %b %j %i %v %h %t %T %V %k %[ %u %U
// %g %G and the upper-case copies of the first ones.
const uwsgiMagic = "opsdcenx0123456789bjivhtTVk[uUgGODSPCENXIJ"

// UWSGIIni parses a uWSGI ini file as uWSGI 2.0 reads it. First, as
// uwsgi_open_and_read does, the whole file goes through magic_sub
// (core/utils.c): %% becomes %, %( stays for the option references below,
// a magic variable becomes its value, and % with any other character —
// a newline included, which joins two lines — disappears. Then, as
// uwsgi_ini_config does (core/ini.c): lines end at \n only; spaces, tabs
// and CRs around a line are removed and a NUL ends it; a line starting
// with "[" names a section (the text between the "[" and the line's last
// character, whatever that is); a line starting with ";" or "#" is a
// comment, but ";" and "#" elsewhere are part of the value; any other
// line is an option, the key up to the first "=" and the value after it
// (empty without "="), both trimmed. uWSGI uses the options of the
// [uwsgi] section only; the others are listed with their own section in
// Context, and lines before any section have none.
//
// Args holds the value as one word. A magic variable is left in it as
// written (%n) and Expands set, as it is for a value in which uWSGI's
// later passes would look up $(ENV), @(file) (a file, or a command with
// @(exec://...)) or %(option) (even when written %%(option)).
//
// Not modelled: the values of magic variables, the ini, include and
// inherit options and the file:section syntax, the if-*/for/endfor
// logic options, inject-before/after, and the way each option parses
// its value.
func UWSGIIni(data []byte) ([]Directive, error) {
	text, lines, magic := uwsgiMagicSub(data)
	var out []Directive
	var ctx []string
	for start := 0; start < len(text); {
		end := strings.IndexByte(text[start:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += start
		}
		raw := text[start:end]
		line := lines[start]
		expanded := false
		for i := start; i < end; i++ {
			expanded = expanded || magic[i]
		}
		start = end + 1

		if i := strings.IndexByte(raw, 0); i >= 0 {
			raw = raw[:i]
		}
		key := strings.TrimRight(strings.TrimLeft(raw, " \t\r"), " \t\r")
		switch {
		case key == "":
		case key[0] == '[':
			ctx = []string{key[1:max(1, len(key)-1)]}
		case key[0] == ';' || key[0] == '#':
		default:
			name, value, _ := strings.Cut(key, "=")
			name = strings.TrimRight(name, " \t\r")
			value = strings.Trim(value, " \t\r")
			out = append(out, Directive{
				Context: append([]string(nil), ctx...),
				Name:    name,
				Args:    []string{value},
				Raw:     value,
				Line:    line,
				Expands: expanded || uwsgiPass(value, '$') || uwsgiPass(value, '@') || uwsgiPass(value, '%'),
			})
		}
	}
	return out, nil
}

// uwsgiMagicSub is magic_sub over the file and the NUL uWSGI appends to
// it. It returns the text, the line each byte of it came from and which
// bytes stand for a magic variable.
func uwsgiMagicSub(data []byte) (string, []int, []bool) {
	in := append(append([]byte(nil), data...), 0)
	var out []byte
	var lines []int
	var magic []bool
	line := 1
	emit := func(s string, m bool, l int) {
		for i := 0; i < len(s); i++ {
			out = append(out, s[i])
			lines = append(lines, l)
			magic = append(magic, m)
		}
	}
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '%' && i+1 < len(in) {
			next := in[i+1]
			switch {
			case next == '%':
				emit("%", false, line)
			case next == '(':
				emit("%(", false, line)
			case strings.IndexByte(uwsgiMagic, next) >= 0:
				emit(string([]byte{'%', next}), true, line)
			}
			if next == '\n' {
				line++
			}
			i++
			continue
		}
		emit(string([]byte{c}), false, line)
		if c == '\n' {
			line++
		}
	}
	// The NUL uWSGI appended ends the last line (unless a % ate it).
	if n := len(out); n > 0 && out[n-1] == 0 {
		out, lines, magic = out[:n-1], lines[:n-1], magic[:n-1]
	}
	return string(out), lines, magic
}

// uwsgiPass reports whether uwsgi_apply_config_pass (core/utils.c) would
// look something up in value for symbol: symbol, "(", a non-empty key with
// balanced parentheses, ")".
func uwsgiPass(value string, symbol byte) bool {
	has, depth := 0, 0
	for j := 0; j < len(value); j++ {
		c := value[j]
		switch {
		case c == symbol:
			has = 1
		case c == '(' && has == 1:
			has, depth = 2, 0
		case has > 1:
			switch c {
			case '(':
				has++
				depth++
			case ')':
				if depth > 0 {
					has++
					depth--
					continue
				}
				if has <= 2 {
					has = 0
					continue
				}
				return true
			default:
				has++
			}
		default:
			has = 0
		}
	}
	return false
}
