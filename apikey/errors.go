package apikey

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with [errors.Is]; the concrete error may wrap
// one of these with more detail.
var (
	// ErrMalformed reports a key whose text could not have been issued by
	// the service's format ([Config].Format): wrong prefix or environment, wrong length, a character
	// outside base62, or a checksum that does not match. It is decided
	// without any store access.
	ErrMalformed = errors.New("apikey: malformed key")

	// ErrInvalidKey reports a well-formed key that does not verify: it was
	// never issued, was deleted, or was revoked. The three cases are
	// deliberately indistinguishable.
	ErrInvalidKey = errors.New("apikey: invalid key")

	// ErrExpired reports a key past its expiry, including a key retired by
	// [Service.Rotate] once its grace period ended.
	ErrExpired = errors.New("apikey: key expired")

	// ErrNotYetValid reports a key used before its NotBefore time.
	ErrNotYetValid = errors.New("apikey: key not yet valid")

	// ErrDisabled reports a key its owner disabled: answer it as
	// [ErrInvalidKey], and a management operation that needs the key
	// enabled (rotation).
	ErrDisabled = errors.New("apikey: key disabled")

	// ErrConflict reports a change of a key or an account that another
	// change overtook between reading it and writing it: read it again
	// and retry, if the change still makes sense.
	ErrConflict = errors.New("apikey: concurrent change")

	// ErrNotFound reports that no key with the given ID exists for the
	// owner (a key that belongs to another owner is reported the same
	// way), or no account with the given ID.
	ErrNotFound = errors.New("apikey: not found")

	// ErrRevoked reports a management operation on a revoked key.
	ErrRevoked = errors.New("apikey: key revoked")

	// ErrRotated reports a rotation of a key that a rotation has already
	// replaced (it may still verify, inside its grace period): rotate its
	// replacement instead.
	ErrRotated = errors.New("apikey: key already rotated")

	// ErrTooManyKeys reports that the owner already has the maximum number
	// of active keys. The error text includes the limit.
	ErrTooManyKeys = errors.New("apikey: maximum number of active keys reached")

	// ErrDuplicate reports a key ID or hash that is already stored.
	ErrDuplicate = errors.New("apikey: duplicate key")

	// ErrInvalidInput reports a field that fails validation. The concrete
	// error is an [*InputError] naming the field.
	ErrInvalidInput = errors.New("apikey: invalid input")

	// ErrInvalidConfig reports a bad [FormatConfig] or [Config].
	ErrInvalidConfig = errors.New("apikey: invalid configuration")
)

// InputError describes why one input field was rejected. It matches
// [ErrInvalidInput] with [errors.Is]. Its message never contains a key.
type InputError struct {
	// Field is the name of the rejected field, in snake_case as it would
	// appear in a JSON request (for example "description").
	Field string
	// Reason says what is wrong, for humans (for example "longer than 500
	// characters").
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("apikey: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is [ErrInvalidInput].
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// LimitError reports an owner at the limit of active keys. It matches
// [ErrTooManyKeys] with [errors.Is].
type LimitError struct {
	// Max is the limit.
	Max int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("apikey: maximum number of active keys reached (%d)", e.Max)
}

// Is reports whether target is [ErrTooManyKeys].
func (e *LimitError) Is(target error) bool { return target == ErrTooManyKeys }

// errNoRecord reports a store that broke its contract by answering with
// neither a record nor an error: a store failure, never "invalid key".
var errNoRecord = errors.New("apikey: the store returned neither a record nor an error")

func invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// disabledError is what [Service.Verify] returns for a disabled key: it
// matches [ErrDisabled] and, so that every caller answers it as an
// unknown key, [ErrInvalidKey].
type disabledError struct{}

func (disabledError) Error() string { return ErrDisabled.Error() }
func (disabledError) Is(target error) bool {
	return target == ErrDisabled || target == ErrInvalidKey
}

// malformedError is a preallocated reason for [ErrMalformed], so that
// rejecting garbage costs no allocation.
type malformedError struct{ reason string }

func (e *malformedError) Error() string        { return "apikey: malformed key: " + e.reason }
func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

var (
	errEmpty       error = &malformedError{"empty"}
	errLength      error = &malformedError{"wrong length"}
	errPrefix      error = &malformedError{"wrong prefix"}
	errEnvironment error = &malformedError{"unknown environment"}
	errCharset     error = &malformedError{"character outside base62"}
	errChecksum    error = &malformedError{"checksum mismatch"}
)
