package backend

import (
	"errors"
	"fmt"
)

// ErrorKind says what the dispatcher should make of a backend error.
type ErrorKind int

const (
	// KindInternal is a fault of the backend or its engine (HTTP 500).
	KindInternal ErrorKind = iota
	// KindInvalid is a pod or request the backend cannot honour; the message names the field (HTTP 422).
	KindInvalid
	// KindNotFound is an unknown pod or container (HTTP 404).
	KindNotFound
	// KindUnavailable is an engine that cannot be reached now; retrying later may work (HTTP 503).
	KindUnavailable
)

func (k ErrorKind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not_found"
	case KindUnavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// Error is a backend error with a kind. Its message is a sentence a user can act on.
type Error struct {
	Kind ErrorKind
	Msg  string
	Err  error // the underlying cause, if any (not sent over the wire)
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message. A %w verb wraps the cause.
func Errorf(kind ErrorKind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// Invalid returns a KindInvalid error.
func Invalid(format string, args ...any) error { return Errorf(KindInvalid, format, args...) }

// NotFound returns a KindNotFound error.
func NotFound(format string, args ...any) error { return Errorf(KindNotFound, format, args...) }

// Unavailable returns a KindUnavailable error.
func Unavailable(format string, args ...any) error { return Errorf(KindUnavailable, format, args...) }

// KindOf returns the kind of err: that of the first *Error in its chain, KindInternal otherwise.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
