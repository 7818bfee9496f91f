package apikey

import "fmt"

// redacted is what every printed or encoded form of a [Secret] shows.
const redacted = "[REDACTED]"

// Secret is the plaintext of a newly issued key. It exists only in the
// result of [Service.Create] and [Service.Rotate]; stores never see it.
//
// A Secret redacts itself everywhere it could leak by accident: fmt with
// any verb, encoding/json, encoding/xml, and log/slog's text and JSON
// handlers all show "[REDACTED]". The text sits two pointers deep: fmt's reflection (over an
// unexported field, or after a verb it rejects) dereferences at most one
// pointer and prints the next as an address, never the key.
// Call [Secret.Reveal] at the one place the key must be shown to its holder.
type Secret struct {
	v *secretValue
}

type secretValue struct {
	text    *string
	display int
}

func newSecret(text string, display int) Secret {
	return Secret{v: &secretValue{text: &text, display: display}}
}

// Reveal returns the plaintext key. Show it once, to the key's holder, and
// never log it. It returns "" for the zero Secret.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v.text
}

// displayPrefix returns the key's first characters, which identify it in
// lists without revealing it.
func (s Secret) displayPrefix() string {
	if s.v == nil {
		return ""
	}
	return (*s.v.text)[:s.v.display]
}

// Format writes "[REDACTED]" for every fmt verb, so that %x or %q cannot
// encode the key either.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalText encodes "[REDACTED]": encoding/json, encoding/xml and
// log/slog use it, so a Secret never reaches a JSON body or a log. To
// send a key to its holder, put [Secret.Reveal] in the response
// explicitly.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
