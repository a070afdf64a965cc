package oauth2code

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDescription bounds the provider text (description, URI) kept in a
// source.Error, in bytes.
const MaxDescription = 256

// Fold replaces invalid UTF-8 and control characters, folds runs of white
// space into one space and trims the ends. It stops after about limit
// bytes; more reports that it did.
func Fold(text string, limit int) (folded string, more bool) {
	var b strings.Builder
	space := false
	for _, r := range text {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if b.Len() >= limit {
			more = true
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String(), more
}

// Cut returns text, or its first at most limit bytes (whole runes, white
// space trimmed) and "…" when it is longer or more says it was cut before.
func Cut(text string, limit int, more bool) string {
	if len(text) <= limit && !more {
		return text
	}
	cut := min(limit, len(text))
	for cut > 0 && cut < len(text) && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return strings.TrimSpace(text[:cut]) + "…"
}
