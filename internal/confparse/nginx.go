package confparse

import "strings"

// ngxConfBuffer is NGX_CONF_BUFFER: nginx reads its configuration through a
// buffer of this size, and a token that does not fit is an error.
const ngxConfBuffer = 4096

type ngxRC int

const (
	ngxOK         ngxRC = iota // a directive ended by ";"
	ngxBlockStart              // a directive ended by "{"
	ngxBlockDone               // "}"
	ngxFileDone                // end of the file
)

// ngxReader is the state ngx_conf_read_token keeps in the ngx_conf_file_t:
// the position in the file, the end of what the buffer holds and the line.
type ngxReader struct {
	data      []byte
	pos, last int
	line      int
	// first is the offset where the directive being read starts.
	first int
}

// span is where a directive is in the file: from its first token to the
// ";" or, for a block, the "}" that ends it.
type span struct{ start, end int }

// Nginx parses an nginx configuration file (such as a site included from
// the http block) with the tokenizer of nginx 1.22, ngx_conf_read_token in
// src/core/ngx_conf_file.c, and the block nesting of ngx_conf_parse:
// whitespace, ";" and "{" end a token; ";" ends a directive, "{" opens a
// block and "}" closes one where a token could start (inside a token "}"
// is ordinary, and so is "{" right after "$", as in ${var}); "#" starts a
// comment only where a token could start; single and double quotes end at
// the matching quote, after which only whitespace, ";", "{" or ")" may
// follow; a backslash makes the next character, a newline included,
// ordinary, and \" \' \\ \t \r \n are unescaped in every token, other
// backslashes kept; a token or comment that does not fit nginx's 4096-byte
// read buffer is an error. Context names the enclosing blocks within the
// file, outermost first.
//
// Not modelled: which directives exist, take blocks or how many
// arguments (nginx checks those in ngx_conf_handler, after tokenizing),
// the handlers that parse the inside of types, map, geo and similar
// blocks themselves (they refuse "{" there), include, and nginx's own
// parsing of variables, regular expressions and if conditions. Expands
// reports an argument with "$", which nginx compiles as a variable in the
// directives that accept variables.
func Nginx(data []byte) ([]Directive, error) {
	ds, _, err := nginxSpans(data)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// nginxSpans is Nginx with where each directive is in the file; with an
// error, it returns the directives read before it.
func nginxSpans(data []byte) ([]Directive, []span, error) {
	r := &ngxReader{data: data, line: 1}
	var out []Directive
	var spans []span
	var ctx []string
	var open []int // the directives whose blocks are open
	for {
		args, rc, err := r.readToken()
		if err != nil {
			return out, spans, err
		}
		switch rc {
		case ngxBlockDone:
			if len(ctx) == 0 {
				return out, spans, syntaxErr("nginx", r.line, `unexpected "}"`)
			}
			ctx = ctx[:len(ctx)-1]
			spans[open[len(open)-1]].end = r.pos
			open = open[:len(open)-1]
			continue
		case ngxFileDone:
			if len(ctx) > 0 {
				return out, spans, syntaxErr("nginx", r.line, `unexpected end of file, expecting "}"`)
			}
			return out, spans, nil
		}
		d := Directive{
			Context: append([]string(nil), ctx...),
			Name:    args[0],
			Args:    args[1:],
			Line:    r.line,
			Block:   rc == ngxBlockStart,
		}
		for _, a := range d.Args {
			if strings.Contains(a, "$") {
				d.Expands = true
			}
		}
		out = append(out, d)
		spans = append(spans, span{r.first, r.pos})
		if d.Block {
			ctx = append(ctx, d.Name)
			open = append(open, len(spans)-1)
		}
	}
}

func ngxSpace(ch byte) bool { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' }

// readToken is ngx_conf_read_token: it reads the words of one directive up
// to the ";" or "{" that ends it, or a "}" or the end of the file.
func (r *ngxReader) readToken() ([]string, ngxRC, error) {
	var args []string
	found, needSpace, lastSpace, sharpComment, variable := false, false, true, false, false
	quoted, sQuoted, dQuoted := false, false, false
	start, startLine := r.pos, r.line
	size := len(r.data)
	for {
		if r.pos >= r.last {
			if r.last >= size {
				if len(args) > 0 || !lastSpace {
					return nil, 0, syntaxErr("nginx", r.line, `unexpected end of file, expecting ";" or "}"`)
				}
				return nil, ngxFileDone, nil
			}
			if r.pos-start == ngxConfBuffer {
				r.line = startLine
				switch {
				case dQuoted:
					return nil, 0, syntaxErr("nginx", r.line, `too long parameter, probably missing terminating """ character`)
				case sQuoted:
					return nil, 0, syntaxErr("nginx", r.line, `too long parameter, probably missing terminating "'" character`)
				}
				return nil, 0, syntaxErr("nginx", r.line, `too long parameter "%s..." started`, r.data[start:start+10])
			}
			// The buffer keeps the token begun so far and is filled up to
			// its size from the file.
			r.last = min(size, start+ngxConfBuffer)
		}

		ch := r.data[r.pos]
		r.pos++

		if ch == '\n' {
			r.line++
			sharpComment = false
		}
		if sharpComment {
			continue
		}
		if quoted {
			quoted = false
			continue
		}

		if needSpace {
			switch {
			case ngxSpace(ch):
				lastSpace, needSpace = true, false
				continue
			case ch == ';':
				return args, ngxOK, nil
			case ch == '{':
				return args, ngxBlockStart, nil
			case ch == ')':
				lastSpace, needSpace = true, false
			default:
				return nil, 0, syntaxErr("nginx", r.line, `unexpected "%s"`, []byte{ch})
			}
		}

		if lastSpace {
			start, startLine = r.pos-1, r.line
			if ngxSpace(ch) {
				continue
			}
			if len(args) == 0 && ch != '#' {
				r.first = start
			}
			switch ch {
			case ';', '{':
				if len(args) == 0 {
					return nil, 0, syntaxErr("nginx", r.line, `unexpected "%s"`, []byte{ch})
				}
				if ch == '{' {
					return args, ngxBlockStart, nil
				}
				return args, ngxOK, nil
			case '}':
				if len(args) != 0 {
					return nil, 0, syntaxErr("nginx", r.line, `unexpected "}"`)
				}
				return nil, ngxBlockDone, nil
			case '#':
				sharpComment = true
				continue
			case '\\':
				quoted, lastSpace = true, false
				continue
			case '"':
				start++
				dQuoted, lastSpace = true, false
				continue
			case '\'':
				start++
				sQuoted, lastSpace = true, false
				continue
			case '$':
				variable, lastSpace = true, false
				continue
			default:
				lastSpace = false
			}
			continue
		}

		if ch == '{' && variable {
			continue
		}
		variable = false
		if ch == '\\' {
			quoted = true
			continue
		}
		if ch == '$' {
			variable = true
			continue
		}
		switch {
		case dQuoted:
			if ch == '"' {
				dQuoted, needSpace, found = false, true, true
			}
		case sQuoted:
			if ch == '\'' {
				sQuoted, needSpace, found = false, true, true
			}
		case ngxSpace(ch) || ch == ';' || ch == '{':
			lastSpace, found = true, true
		}
		if found {
			args = append(args, r.unescape(start, r.pos-1))
			if ch == ';' {
				return args, ngxOK, nil
			}
			if ch == '{' {
				return args, ngxBlockStart, nil
			}
			found = false
		}
	}
}

// unescape copies data[from:to] as ngx_conf_read_token stores a word:
// \" \' \\ lose their backslash, \t \r \n become the control characters,
// any other backslash stays.
func (r *ngxReader) unescape(from, to int) string {
	var b strings.Builder
	for src := from; src < to; {
		if r.data[src] == '\\' && src+1 < len(r.data) {
			switch r.data[src+1] {
			case '"', '\'', '\\':
				src++
			case 't':
				b.WriteByte('\t')
				src += 2
				continue
			case 'r':
				b.WriteByte('\r')
				src += 2
				continue
			case 'n':
				b.WriteByte('\n')
				src += 2
				continue
			}
		}
		b.WriteByte(r.data[src])
		src++
	}
	return b.String()
}
