package backend

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus turns a backend's error into the gRPC status the server answers with. The kind travels as the
// code and the message as the status message, so that the client can rebuild an *Error of the same kind.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		// Already a status (e.g. from a nested gRPC call): pass it on unchanged.
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(kindToCode(KindOf(err)), err.Error())
}

// fromStatus turns an error of a gRPC call into an *Error whose kind and message are the backend's.
// Cancellation and deadlines keep their context error in the chain so that errors.Is works on them.
func fromStatus(method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Kind: KindInternal, Msg: err.Error(), Err: err}
	}
	switch st.Code() {
	case codes.Canceled:
		return &Error{Kind: KindUnavailable, Msg: fmt.Sprintf("the backend's %s call was cancelled", method),
			Err: context.Canceled}
	case codes.DeadlineExceeded:
		return &Error{Kind: KindUnavailable,
			Msg: fmt.Sprintf("the backend did not answer %s in time", method), Err: context.DeadlineExceeded}
	case codes.Unavailable:
		// Unavailable is both what a backend says of its engine and what gRPC says of a dead connection; the
		// message tells them apart for the user.
		return &Error{Kind: KindUnavailable, Msg: st.Message()}
	}
	return &Error{Kind: codeToKind(st.Code()), Msg: st.Message()}
}

func kindToCode(k ErrorKind) codes.Code {
	switch k {
	case KindInvalid:
		return codes.InvalidArgument
	case KindNotFound:
		return codes.NotFound
	case KindUnavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

func codeToKind(c codes.Code) ErrorKind {
	switch c {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return KindInvalid
	case codes.NotFound:
		return KindNotFound
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Canceled, codes.DeadlineExceeded:
		return KindUnavailable
	default:
		return KindInternal
	}
}
