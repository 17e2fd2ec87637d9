package lib

// Hello greets.
func Hello() string { return "hello from the sample tree" }
