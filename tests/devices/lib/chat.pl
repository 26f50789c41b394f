#!/usr/bin/perl
# A small "expect" for tests, on core Perl only: runs a command with pipes
# (use `ssh -tt` so the device side still gets a terminal) and plays a
# script against its output.
#
#   chat.pl [--timeout S] [--log FILE] SCRIPT -- COMMAND [ARG...]
#
# SCRIPT lines (blank lines and lines starting with # are skipped):
#   expect REGEX     wait until the output (since the last match) matches
#   reject REGEX     fail if the output since the last match matches
#   send TEXT        send TEXT and a newline (\n, \t, \\ are understood)
#   sendraw TEXT     send TEXT without a newline
#   sendfile FILE    send the first line of FILE and a newline (passwords)
#   sendlines FILE   send every line of FILE, each with a newline
#   sleep S          pause
#   eof              wait until the command closes its output
#   status N         wait for the command to exit; its exit code must be N
# When the script ends without eof or status the command gets 2 s to exit
# and is then ended with SIGTERM.
# Exit 0 when the script completes; 1 with a message and the last output
# otherwise. The whole transcript goes to --log FILE.
use strict;
use warnings;
use IO::Select;
use IPC::Open3;
use POSIX ();
use Time::HiRes qw(time sleep);

my $timeout = 10;
my $log_file;
while (@ARGV && $ARGV[0] =~ /^--(timeout|log)$/) {
	my $opt = shift @ARGV;
	my $val = shift @ARGV;
	if ($opt eq '--timeout') { $timeout = $val } else { $log_file = $val }
}
my $script_file = shift @ARGV;
shift @ARGV if @ARGV && $ARGV[0] eq '--';
die "usage: chat.pl [--timeout S] [--log FILE] SCRIPT -- COMMAND [ARG...]\n"
	unless defined $script_file && @ARGV;

open(my $sfh, '<', $script_file) or die "chat.pl: $script_file: $!\n";
my @steps = grep { !/^\s*(#|$)/ } map { s/\r?\n\z//r } <$sfh>;
close $sfh;

my $log;
if (defined $log_file) {
	open($log, '>>', $log_file) or die "chat.pl: $log_file: $!\n";
	$log->autoflush(1);
}

$SIG{PIPE} = 'IGNORE';
my $pid = open3(my $in, my $out, undef, @ARGV);
$in->autoflush(1);
my $sel = IO::Select->new($out);
my $buf = '';
my $closed = 0;

sub fail {
	my ($msg) = @_;
	my $tail = length($buf) > 800 ? substr($buf, -800) : $buf;
	print STDERR "chat.pl: $msg\n--- output since the last match:\n$tail\n---\n";
	kill 'TERM', $pid;
	waitpid($pid, 0);
	exit 1;
}

# pump DEADLINE: read what is there (waiting at most until DEADLINE).
sub pump {
	my ($deadline) = @_;
	return 0 if $closed;
	my $left = $deadline - time;
	$left = 0 if $left < 0;
	return 1 unless $sel->can_read($left);
	my $n = sysread($out, my $chunk, 65536);
	if (!$n) {
		$closed = 1;
		return 0;
	}
	$buf .= $chunk;
	print $log $chunk if $log;
	return 1;
}

sub unescape {
	my ($s) = @_;
	$s =~ s/\\(.)/$1 eq 'n' ? "\n" : $1 eq 't' ? "\t" : $1 eq 'r' ? "\r" : $1/ge;
	return $s;
}

sub put {
	my ($data) = @_;
	print $log "[sent " . length($data) . " bytes]\n" if $log;
	my $off = 0;
	while ($off < length $data) {
		my $n = syswrite($in, $data, length($data) - $off, $off);
		fail("the command stopped reading its input") unless defined $n;
		$off += $n;
	}
}

for my $step (@steps) {
	my ($cmd, $arg) = $step =~ /^\s*(\S+)\s?(.*)$/;
	$arg //= '';
	if ($cmd eq 'expect') {
		my $deadline = time + $timeout;
		while (1) {
			if ($buf =~ /$arg/) {
				$buf = substr($buf, $+[0]);
				last;
			}
			fail("timed out after ${timeout}s waiting for /$arg/") if time >= $deadline;
			fail("output ended while waiting for /$arg/") unless pump($deadline);
		}
	} elsif ($cmd eq 'reject') {
		pump(time + 0.2) while $sel->can_read(0) && !$closed;
		fail("unexpected /$arg/ in the output") if $buf =~ /$arg/;
	} elsif ($cmd eq 'send') {
		put(unescape($arg) . "\n");
	} elsif ($cmd eq 'sendraw') {
		put(unescape($arg));
	} elsif ($cmd eq 'sendfile' || $cmd eq 'sendlines') {
		open(my $fh, '<', $arg) or fail("$arg: $!");
		my @lines = <$fh>;
		close $fh;
		@lines = ($lines[0] // '') if $cmd eq 'sendfile';
		put(join('', map { s/\r?\n\z//r . "\n" } @lines));
	} elsif ($cmd eq 'sleep') {
		sleep($arg);
	} elsif ($cmd eq 'eof') {
		my $deadline = time + $timeout;
		while (!$closed) {
			fail("timed out after ${timeout}s waiting for the output to end") if time >= $deadline;
			pump($deadline);
		}
	} elsif ($cmd eq 'status') {
		close $in;
		my $deadline = time + $timeout;
		my $done = 0;
		while (time < $deadline) {
			pump(time + 0.1) unless $closed;
			sleep(0.05) if $closed;
			$done = waitpid($pid, POSIX::WNOHANG());
			last if $done == $pid;
		}
		fail("timed out waiting for the command to exit") unless $done == $pid;
		my $code = $? >> 8;
		fail("exit code $code, wanted $arg") unless $code == $arg;
		exit 0;
	} else {
		fail("unknown script step \"$step\"");
	}
}
# The script is done and did not ask for the end: give the command a moment
# to finish, then end it (for ssh: the connection drops).
close $in;
my $deadline = time + 2;
while (waitpid($pid, POSIX::WNOHANG()) != $pid) {
	if (time >= $deadline) {
		kill 'TERM', $pid;
		waitpid($pid, 0);
		last;
	}
	pump(time + 0.1) unless $closed;
	sleep(0.05) if $closed;
}
exit 0;
