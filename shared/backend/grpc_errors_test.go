package backend

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorsRoundTrip(t *testing.T) {
	cause := errors.New("dial unix /run/podman/podman.sock: connect: no such file or directory")
	for _, tc := range []struct {
		err  error
		code codes.Code
		kind ErrorKind
	}{
		{Invalid("spec.volumes[0]: volume kind %q is not supported", "nfs"), codes.InvalidArgument, KindInvalid},
		{NotFound("pod %s is not known", "u1"), codes.NotFound, KindNotFound},
		{Unavailable("the Podman service cannot be reached: %w", cause), codes.Unavailable, KindUnavailable},
		{Errorf(KindInternal, "the engine answered %d", 500), codes.Internal, KindInternal},
		{errors.New("a plain error"), codes.Internal, KindInternal},
		{fmt.Errorf("creating: %w", Invalid("metadata.uid: missing")), codes.InvalidArgument, KindInvalid},
	} {
		st := toStatus(tc.err)
		if status.Code(st) != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, status.Code(st), tc.code)
		}
		back := fromStatus("Create", st)
		if KindOf(back) != tc.kind || back.Error() != tc.err.Error() {
			t.Errorf("%v came back as kind %v, message %q", tc.err, KindOf(back), back.Error())
		}
	}
	if toStatus(nil) != nil || fromStatus("Create", nil) != nil {
		t.Error("nil errors must stay nil")
	}
}

func TestContextErrors(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		back := fromStatus("Status", toStatus(fmt.Errorf("waiting for the engine: %w", cause)))
		if !errors.Is(back, cause) || KindOf(back) != KindUnavailable {
			t.Errorf("%v came back as %v (kind %v)", cause, back, KindOf(back))
		}
	}
}
