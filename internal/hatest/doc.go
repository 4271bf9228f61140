// Package hatest holds mux's tests of several hosts per database against a
// real primary and streaming replica: routing by target_session_attrs,
// what libpq and pgx see at login, a replica going down, a black-holed
// primary and a failover. It has no code of its own; one primary/replica
// pair serves every test of the package.
package hatest
