// This module exists only so that the Go tool of the main module does not
// walk into contract/node_modules. It holds no Go code.
module github.com/linetoken/linetoken/contract

go 1.26
