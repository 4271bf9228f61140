// Package auth implements the password exchanges mux speaks on both sides: md5 and SCRAM-SHA-256.
package auth
