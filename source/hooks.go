package source

import (
	"context"
	"errors"
	"fmt"
)

// callPasswordFunc asks for a password, turning a panic into an error.
func callPasswordFunc(ctx context.Context, f func(context.Context) (string, error), scrub scrubber) (pw string, err error) {
	err = callHook("Config.PasswordFunc", scrub, func() error {
		var ferr error
		pw, ferr = f(ctx)
		return ferr
	})
	if err != nil {
		return "", err
	}
	if pw == "" {
		err := errors.New("it returned an empty password")
		return "", &HookError{Hook: "Config.PasswordFunc", Err: err, msg: err.Error()}
	}
	return pw, nil
}

// callHook runs a user hook; a panic becomes an error whose text is
// scrubbed, and a hook's error is wrapped with the hook's name.
func callHook(name string, scrub scrubber, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			perr := fmt.Errorf("panicked: %s", scrub.clean(fmt.Sprint(v)))
			err = &HookError{Hook: name, Err: perr, msg: perr.Error()}
		}
	}()
	if err := f(); err != nil {
		return &HookError{Hook: name, Err: err, msg: scrub.clean(err.Error())}
	}
	return nil
}
