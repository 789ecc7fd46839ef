// Package progress shows the progress of long waits (image builds,
// side-loads) to a person: on a terminal one live line, rewritten in place;
// when output is not a terminal, plain lines, each kind at most every few
// seconds so a log stays readable. The example programs use it; library code
// reports progress through callbacks and never prints.
package progress
