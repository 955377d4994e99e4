package httpapi

import (
	"context"
	"encoding/json"
	"errors"

	"hsmkms/kms"
)

// handlerFunc runs one operation on a raw request body and returns the raw
// response body; an empty response means "send no body". It sees no Gin
// and no HTTP: the context carries the authenticated principal.
type handlerFunc func(ctx context.Context, body []byte) ([]byte, error)

// op adapts a service method to a handlerFunc: strict decode into *In, call,
// encode *Out. Every operation goes through here, so decoding and encoding
// rules are the same everywhere.
func op[In, Out any](call func(context.Context, *In) (*Out, error)) handlerFunc {
	return func(ctx context.Context, body []byte) ([]byte, error) {
		in, err := decodeRequest[In](body)
		if err != nil {
			return nil, err
		}
		ctx, err = beforeCall(ctx, in) // audit record, quotas (observe.go)
		if err != nil {
			return nil, err
		}
		out, err := call(ctx, in)
		if err != nil {
			return nil, err
		}
		afterCall(ctx, out)
		if out == nil {
			return nil, kms.Internal(errors.New("operation returned neither a result nor an error"))
		}
		// Operations without output answer with an empty body, as AWS
		// does; the SDKs accept it.
		if _, empty := any(out).(*kms.Empty); empty {
			return nil, nil
		}
		resp, err := json.Marshal(out)
		if err != nil {
			return nil, kms.Internal(err)
		}
		return resp, nil
	}
}
