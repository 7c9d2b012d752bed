package daspeaktest_test

import "io"

func errUnexpectedEOF() error { return io.ErrUnexpectedEOF }
