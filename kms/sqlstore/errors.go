package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"

	"hsmkms/kms"

	"github.com/mattn/go-sqlite3"
)

// wrap adds the operation to err and maps database errors onto the kms store
// errors, keeping both matchable: errors.Is(err, kms.ErrStoreNotFound) and
// errors.As(err, &sqlite3.Error{}) work on the result.
//
// Callers must not put secrets in op: error strings end up in logs.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: %s: %w", op, classify(err))
}

// classify maps an error from database/sql or the driver to a kms sentinel
// where one applies, and returns err unchanged otherwise.
func classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return kms.ErrStoreNotFound
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.ExtendedCode {
		case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
			return fmt.Errorf("%w (%w)", kms.ErrStoreAlreadyExists, err)
		case sqlite3.ErrConstraintForeignKey:
			// Every foreign key here points at keys(id): the referenced key
			// does not exist.
			return fmt.Errorf("%w: key (%w)", kms.ErrStoreNotFound, err)
		}
	}
	return err
}
