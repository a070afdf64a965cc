package source

import (
	"bytes"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
)

// Bounds of provider text kept in an Error.
const (
	maxDescription = oauth2code.MaxDescription
	// minSecretLen: a shorter secret is scrubbed only where it stands as
	// a word of its own (not inside another word), so that a one-letter
	// password does not turn every "a" of a description into [REDACTED].
	minSecretLen = 4
)

// scrubber removes secrets from provider text. The zero value removes
// nothing but still bounds and cleans.
type scrubber struct {
	secrets []string // every form of every secret, longest first
	short   []string // forms of secrets shorter than minSecretLen: whole words only
}

// with returns a scrubber that also removes more, in each form a provider
// may echo it back: as it is, form-encoded, path-escaped, JSON-escaped
// (with and without HTML escaping, with and without "\/"), and
// HTML-escaped. clean also decodes HTML entities and percent-escapes of
// any style, so that other spellings are found as well.
func (s scrubber) with(more ...string) scrubber {
	out := scrubber{secrets: slices.Clone(s.secrets), short: slices.Clone(s.short)}
	for _, v := range more {
		if v == "" {
			continue
		}
		j := jsonEscape(v, false)
		forms := []string{v, url.QueryEscape(v), url.PathEscape(v), jsonEscape(v, true), j,
			strings.ReplaceAll(j, "/", `\/`), html.EscapeString(v), htmlEscapeNamed(v)}
		for _, f := range forms {
			list := &out.secrets
			if len(v) < minSecretLen {
				list = &out.short
			}
			if !slices.Contains(*list, f) {
				*list = append(*list, f)
			}
		}
	}
	// Longest first, so that a secret inside another is not half-replaced.
	slices.SortStableFunc(out.secrets, func(a, b string) int { return len(b) - len(a) })
	slices.SortStableFunc(out.short, func(a, b string) int { return len(b) - len(a) })
	return out
}

// htmlEscapeNamed is v HTML-escaped with named and hex entities, as other
// escapers than Go's write them.
var htmlEscapeNamed = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;").Replace

// empty reports whether s knows no secret.
func (s scrubber) empty() bool { return len(s.secrets) == 0 && len(s.short) == 0 }

// replace replaces every known form of every secret in text, and reports
// whether it found one.
func (s scrubber) replace(text string) (string, bool) {
	found := false
	for _, v := range s.secrets {
		if strings.Contains(text, v) {
			text, found = strings.ReplaceAll(text, v, redacted), true
		}
	}
	for _, v := range s.short {
		var hit bool
		if text, hit = replaceWord(text, v); hit {
			found = true
		}
	}
	return text, found
}

// replaceWord replaces v in text where it is not part of a longer word
// (the characters around it are not letters or digits).
func replaceWord(text, v string) (string, bool) {
	var b strings.Builder
	found, rest := false, text
	for {
		i := strings.Index(rest, v)
		if i < 0 {
			break
		}
		before, _ := utf8.DecodeLastRuneInString(rest[:i])
		after, _ := utf8.DecodeRuneInString(rest[i+len(v):])
		if (i > 0 && wordRune(before)) || (i+len(v) < len(rest) && wordRune(after)) {
			b.WriteString(rest[:i+len(v)])
		} else {
			b.WriteString(rest[:i])
			b.WriteString(redacted)
			found = true
		}
		rest = rest[i+len(v):]
	}
	if !found {
		return text, false
	}
	b.WriteString(rest)
	return b.String(), true
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// scrub removes every known secret from text, before anything else is
// done to it (tags stripped, bounds applied): in the forms with knows,
// then in text with its HTML entities and its percent-escapes decoded (a
// secret spelled "&#60;" or "%2a"), up to three layers deep. When a
// decoded text held a secret, the decoded, scrubbed text is returned.
func (s scrubber) scrub(text string) string {
	if s.empty() {
		return text
	}
	text, _ = s.replace(text)
	for range 3 {
		decoded := false
		if strings.Contains(text, "&") {
			if u := html.UnescapeString(text); u != text {
				if r, hit := s.replace(u); hit {
					text, decoded = r, true
				}
			}
		}
		if strings.Contains(text, "%") {
			for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
				if u, err := unescape(text); err == nil && u != text {
					if r, hit := s.replace(u); hit {
						text, decoded = r, true
						break
					}
				}
			}
		}
		if !decoded {
			break
		}
	}
	return text
}

// jsonEscape is v as it appears inside a JSON string.
func jsonEscape(v string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(v)
	out := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(out, `"`), `"`)
}

// clean returns text safe to show: every known secret replaced, invalid
// UTF-8 and control characters replaced, runs of white space folded, and
// at most maxDescription bytes. Secrets are replaced first, and again
// after folding (which could join the parts of one); the bound comes last.
func (s scrubber) clean(text string) string {
	text = s.scrub(text)
	longest := 0
	if len(s.secrets) > 0 {
		longest = len(s.secrets[0])
	}
	text, more := oauth2code.Fold(text, maxDescription+longest+1)
	return oauth2code.Cut(s.scrub(text), maxDescription, more)
}
