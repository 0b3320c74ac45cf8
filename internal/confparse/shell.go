package confparse

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Shape is the structure of a POSIX shell script, one line per command,
// clause or redirection, indented by nesting. It leaves out literal text,
// and how a literal is quoted, so two renderings of a template have the
// same shape as long as every value stays within its words; it keeps what
// changes how the shell runs the script: every simple command with one
// entry per word, every assignment with its name, parameter expansions
// with their names and whether they are quoted (an unquoted one is split
// into fields), command substitutions and arithmetic (followed by the
// commands inside them), unquoted glob characters and tildes in literals
// (marked L* and L~), redirections, here-documents, functions, and the
// if, case, for, while, && || | ! & structure. The keywords of an LSB
// header ("### BEGIN INIT INFO" … "### END INIT INFO", which insserv and
// systemd's sysv generator read) come first, one line each.
type Shape []string

func (s Shape) String() string { return strings.Join(s, "\n") }

// shellParser parses POSIX shell as dash, Debian's /bin/sh, accepts it.
func shellParser() *syntax.Parser {
	return syntax.NewParser(syntax.Variant(syntax.LangPOSIX), syntax.KeepComments(true))
}

func parseShell(data []byte) (*syntax.File, error) {
	f, err := shellParser().Parse(bytes.NewReader(data), "")
	if err == nil {
		// The parser takes "() cmd" for an anonymous function, as zsh
		// does, even in POSIX mode; dash refuses it.
		var anonymous *syntax.FuncDecl
		syntax.Walk(f, func(n syntax.Node) bool {
			if fd, ok := n.(*syntax.FuncDecl); ok && fd.Name == nil && anonymous == nil {
				anonymous = fd
			}
			return true
		})
		if anonymous != nil {
			return nil, &SyntaxError{Syntax: "shell", Line: int(anonymous.Pos().Line()), Msg: `")" unexpected: a function needs a name`}
		}
		return f, nil
	}
	var pos syntax.Pos
	var perr syntax.ParseError
	var lerr syntax.LangError
	switch {
	case errors.As(err, &perr):
		pos = perr.Pos
	case errors.As(err, &lerr):
		pos = lerr.Pos
	}
	msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("%d:%d: ", pos.Line(), pos.Col()))
	return nil, &SyntaxError{Syntax: "shell", Line: int(pos.Line()), Msg: msg}
}

// ShellShape parses a POSIX shell script (an init script) with
// mvdan.cc/sh/v3/syntax in POSIX mode and returns its Shape.
//
// Not modelled: what the commands do with their arguments (a value that
// reaches eval, sh -c or su -c is parsed again at run time), the field
// splitting of unquoted expansions by IFS, and dash's own leniencies
// where they differ from POSIX.
func ShellShape(data []byte) (Shape, error) {
	f, err := parseShell(data)
	if err != nil {
		return nil, err
	}
	s := &shaper{lines: lsbShape(data)}
	s.stmts(f.Stmts, 0)
	return Shape(s.lines), nil
}

// lsbShape lists the keywords of the script's LSB header: "lsb Name:" for
// a "# Name: value" line, "lsb +" for a continued description ("#" and a
// tab or two spaces), "lsb ?" for anything else in the header.
func lsbShape(data []byte) []string {
	var out []string
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimRight(l, " \t") == "### BEGIN INIT INFO":
			in = true
			out = append(out, "lsb begin")
		case !in:
		case strings.TrimRight(l, " \t") == "### END INIT INFO":
			return append(out, "lsb end")
		case lsbKeyword.MatchString(l):
			out = append(out, "lsb "+lsbKeyword.FindStringSubmatch(l)[1])
		case strings.HasPrefix(l, "#\t") || strings.HasPrefix(l, "#  "):
			out = append(out, "lsb +")
		default:
			out = append(out, "lsb ?")
		}
	}
	return out
}

var lsbKeyword = regexp.MustCompile(`^# ([A-Za-z0-9-]+:)`)

type shaper struct {
	lines []string
	// nested holds the commands of substitutions met in the words of the
	// line being written; they follow it, one level deeper.
	nested [][]*syntax.Stmt
}

func (s *shaper) emit(depth int, text string) {
	s.lines = append(s.lines, strings.Repeat("  ", depth)+text)
	pending := s.nested
	s.nested = nil
	for _, stmts := range pending {
		s.stmts(stmts, depth+1)
	}
}

func (s *shaper) stmts(stmts []*syntax.Stmt, depth int) {
	for _, st := range stmts {
		s.stmt(st, depth)
	}
}

func (s *shaper) stmt(st *syntax.Stmt, depth int) {
	var mods []string
	if st.Negated {
		mods = append(mods, "!")
	}
	if st.Background {
		mods = append(mods, "&")
	}
	if len(mods) > 0 {
		s.emit(depth, "stmt "+strings.Join(mods, " "))
		depth++
	}
	s.command(st.Cmd, depth)
	for _, r := range st.Redirs {
		n := ""
		if r.N != nil {
			n = r.N.Value
		}
		if r.Hdoc != nil {
			s.emit(depth, fmt.Sprintf("heredoc %s%s %s", n, r.Op, s.word(r.Word, false)))
			s.emit(depth+1, "body "+s.word(r.Hdoc, false))
			continue
		}
		s.emit(depth, fmt.Sprintf("redirect %s%s %s", n, r.Op, s.word(r.Word, false)))
	}
}

func (s *shaper) command(cmd syntax.Command, depth int) {
	switch c := cmd.(type) {
	case nil:
	case *syntax.CallExpr:
		var items []string
		for _, a := range c.Assigns {
			op := "="
			if a.Append {
				op = "+="
			}
			v := "L"
			if a.Value != nil {
				v = s.word(a.Value, true)
			}
			items = append(items, litValue(a.Name)+op+v)
		}
		for _, w := range c.Args {
			items = append(items, s.word(w, false))
		}
		kind := "call"
		if len(c.Args) == 0 {
			kind = "assign"
		}
		s.emit(depth, fmt.Sprintf("%s %d: %s", kind, len(c.Args), strings.Join(items, " ")))
	case *syntax.BinaryCmd:
		s.emit(depth, "binary "+c.Op.String())
		s.stmt(c.X, depth+1)
		s.stmt(c.Y, depth+1)
	case *syntax.FuncDecl:
		s.emit(depth, "func "+litValue(c.Name))
		s.stmt(c.Body, depth+1)
	case *syntax.Block:
		s.emit(depth, "{")
		s.stmts(c.Stmts, depth+1)
		s.emit(depth, "}")
	case *syntax.Subshell:
		s.emit(depth, "(")
		s.stmts(c.Stmts, depth+1)
		s.emit(depth, ")")
	case *syntax.IfClause:
		s.emit(depth, "if")
		s.stmts(c.Cond, depth+1)
		s.emit(depth, "then")
		s.stmts(c.Then, depth+1)
		for e := c.Else; e != nil; e = e.Else {
			if e.ThenPos.IsValid() {
				s.emit(depth, "elif")
				s.stmts(e.Cond, depth+1)
				s.emit(depth, "then")
			} else {
				s.emit(depth, "else")
			}
			s.stmts(e.Then, depth+1)
		}
		s.emit(depth, "fi")
	case *syntax.WhileClause:
		kw := "while"
		if c.Until {
			kw = "until"
		}
		s.emit(depth, kw)
		s.stmts(c.Cond, depth+1)
		s.emit(depth, "do")
		s.stmts(c.Do, depth+1)
		s.emit(depth, "done")
	case *syntax.ForClause:
		it, ok := c.Loop.(*syntax.WordIter)
		if !ok {
			s.emit(depth, "for (unsupported loop)")
			break
		}
		var items []string
		for _, w := range it.Items {
			items = append(items, s.word(w, false))
		}
		in := ""
		if it.InPos.IsValid() {
			in = fmt.Sprintf(" in %d: %s", len(it.Items), strings.Join(items, " "))
		}
		s.emit(depth, "for "+litValue(it.Name)+in)
		s.emit(depth, "do")
		s.stmts(c.Do, depth+1)
		s.emit(depth, "done")
	case *syntax.CaseClause:
		s.emit(depth, "case "+s.word(c.Word, false))
		for _, item := range c.Items {
			var pats []string
			for _, p := range item.Patterns {
				pats = append(pats, s.word(p, false))
			}
			s.emit(depth+1, fmt.Sprintf("pattern %d: %s %s", len(pats), strings.Join(pats, " | "), item.Op))
			s.stmts(item.Stmts, depth+2)
		}
		s.emit(depth, "esac")
	default:
		s.emit(depth, fmt.Sprintf("%T", c))
	}
}

// word describes a word by what the shell does with it: runs of literal
// text, however quoted, become L (L* with an unquoted glob character, L~
// with a tilde the shell expands); expansions keep their names.
func (s *shaper) word(w *syntax.Word, assign bool) string {
	if w == nil {
		return "L"
	}
	ws := &wordShaper{s: s, assign: assign}
	ws.parts(w.Parts, false, true)
	ws.flush()
	if ws.b.Len() == 0 {
		return "L"
	}
	return ws.b.String()
}

type wordShaper struct {
	s           *shaper
	assign      bool
	b           strings.Builder
	lit         bool // literal text is pending
	glob, tilde bool
}

func (ws *wordShaper) flush() {
	if !ws.lit {
		return
	}
	ws.b.WriteString("L")
	if ws.glob {
		ws.b.WriteString("*")
	}
	if ws.tilde {
		ws.b.WriteString("~")
	}
	ws.lit, ws.glob, ws.tilde = false, false, false
}

func (ws *wordShaper) parts(parts []syntax.WordPart, quoted, atStart bool) {
	for i, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			ws.lit = true
			if !quoted {
				ws.glob = ws.glob || unquotedGlob(p.Value)
				if (atStart && i == 0 && strings.HasPrefix(p.Value, "~")) || (ws.assign && strings.Contains(p.Value, ":~")) {
					ws.tilde = true
				}
			}
		case *syntax.SglQuoted:
			ws.lit = true
		case *syntax.DblQuoted:
			ws.parts(p.Parts, true, false)
		case *syntax.ParamExp:
			ws.flush()
			ws.b.WriteString(ws.param(p, quoted))
		case *syntax.CmdSubst:
			ws.flush()
			ws.s.nested = append(ws.s.nested, p.Stmts)
			ws.b.WriteString(quote(quoted, fmt.Sprintf("$(%d)", len(p.Stmts))))
		case *syntax.ArithmExp:
			ws.flush()
			ws.b.WriteString(quote(quoted, "$((…))"))
		default:
			ws.flush()
			ws.b.WriteString(fmt.Sprintf("%T", p))
		}
	}
}

// litValue is the text of a name, empty where the parser left none.
func litValue(l *syntax.Lit) string {
	if l == nil {
		return ""
	}
	return l.Value
}

func quote(quoted bool, s string) string {
	if quoted {
		return `"` + s + `"`
	}
	return s
}

func (ws *wordShaper) param(p *syntax.ParamExp, quoted bool) string {
	name := ""
	if p.Param != nil {
		name = p.Param.Value
	}
	switch {
	case p.Length:
		name = "#" + name
	case p.Exp != nil:
		name += p.Exp.Op.String() + ws.s.word(p.Exp.Word, false)
	}
	return quote(quoted, "${"+name+"}")
}

// unquotedGlob reports a *, ? or [ that is not escaped with a backslash.
func unquotedGlob(lit string) bool {
	for i := 0; i < len(lit); i++ {
		switch lit[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// Landing is one place of a shell script where a value was found whole:
// a word (as the shell sees it after quote removal, expansions left out)
// or a comment.
type Landing struct {
	// Line and Col are where the word or comment starts.
	Line, Col int
	// Kind is arg, assign, redirect, heredoc, for, case, pattern, word (a
	// word inside an expansion) or comment.
	Kind string
	// Command names the command of an arg (its first word) or the
	// variable of an assign or for.
	Command string
	// Index is the position of an arg among the command's words (0 for
	// the command itself).
	Index int
	// Word is the word's literal text, with NUL bytes where expansions
	// are; for a comment, its text.
	Word string
	// Whole reports that the word is exactly the value.
	Whole bool
}

// ShellLanded returns every word and comment of the script whose literal
// text contains value. A value that the shell splits into several words,
// or that opens an expansion, is in none of them.
func ShellLanded(data []byte, value string) ([]Landing, error) {
	f, err := parseShell(data)
	if err != nil {
		return nil, err
	}
	type role struct {
		kind, command string
		index         int
	}
	roles := map[*syntax.Word]role{}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			cmd := ""
			if len(n.Args) > 0 {
				cmd = staticWord(n.Args[0])
			}
			for i, w := range n.Args {
				roles[w] = role{"arg", cmd, i}
			}
			for _, a := range n.Assigns {
				if a.Value != nil {
					roles[a.Value] = role{"assign", litValue(a.Name), 0}
				}
			}
		case *syntax.Redirect:
			roles[n.Word] = role{kind: "redirect"}
			if n.Hdoc != nil {
				roles[n.Hdoc] = role{kind: "heredoc"}
			}
		case *syntax.WordIter:
			for _, w := range n.Items {
				roles[w] = role{"for", litValue(n.Name), 0}
			}
		case *syntax.CaseClause:
			roles[n.Word] = role{kind: "case"}
			for _, item := range n.Items {
				for _, p := range item.Patterns {
					roles[p] = role{kind: "pattern"}
				}
			}
		}
		return true
	})
	var out []Landing
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Word:
			text := staticWord(n)
			if strings.Contains(text, value) {
				r, ok := roles[n]
				if !ok {
					r.kind = "word"
				}
				out = append(out, Landing{
					Line: int(n.Pos().Line()), Col: int(n.Pos().Col()),
					Kind: r.kind, Command: r.command, Index: r.index,
					Word: text, Whole: text == value,
				})
			}
		case *syntax.Comment:
			if strings.Contains(n.Text, value) {
				out = append(out, Landing{Line: int(n.Pos().Line()), Col: int(n.Pos().Col()), Kind: "comment", Word: n.Text})
			}
		}
		return true
	})
	return out, nil
}

// staticWord is the text of a word after quote removal, with a NUL for
// each expansion.
func staticWord(w *syntax.Word) string {
	var b strings.Builder
	staticParts(&b, w.Parts, false)
	return b.String()
}

func staticParts(b *strings.Builder, parts []syntax.WordPart, quoted bool) {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			v := p.Value
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) && (!quoted || strings.IndexByte("$`\"\\\n", v[i+1]) >= 0) {
					i++
				}
				b.WriteByte(v[i])
			}
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			staticParts(b, p.Parts, true)
		default:
			b.WriteByte(0)
		}
	}
}
