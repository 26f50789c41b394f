#!/usr/bin/perl
# cut-transfer fault on a "direct" device: sits between sshd and
# sftp-server (KIND sftp) or the command of an exec request (KIND exec),
# forwards the client's stream until the trigger, lets the server side finish
# what it already got (so a partly written file really is on disk), then
# drops the connection with killconn.
#
#   cutfilter.pl FAULT_FILE sftp|exec COMMAND [ARG...]
#
# FAULT_FILE holds key=value lines written by device-ctl.sh:
#   mode=bytes  count=N   forward exactly N bytes of the client stream
#   mode=write  count=K   forward SFTP packets up to, not including, the K-th
#                         SSH_FXP_WRITE (exec streams pass untouched)
#   mode=marker marker=S  forward up to the first occurrence of S
#   once=1                remove FAULT_FILE when the fault fires
#   stall=1               instead of dropping the connection, keep it up and
#                         answer nothing more (a device that hangs)
use strict;
use warnings;
use POSIX ();

my ($fault_file, $kind, @command) = @ARGV;
die "usage: cutfilter.pl FAULT_FILE sftp|exec COMMAND [ARG...]\n" unless @command;

my %cfg;
open(my $fh, '<', $fault_file) or exec { $command[0] } @command;
while (my $line = <$fh>) {
	chomp $line;
	$cfg{$1} = $2 if $line =~ /^(\w+)=(.*)$/;
}
close $fh;
my $mode = $cfg{mode} // '';
$mode = '' if $mode eq 'write' && $kind ne 'sftp';
my $count = $cfg{count} // 0;
my $marker = $cfg{marker} // '';

$SIG{PIPE} = 'IGNORE';
pipe(my $rd, my $wr) or die "pipe: $!";
my $pid = fork() // die "fork: $!";
if ($pid == 0) {
	close $wr;
	POSIX::dup2(fileno($rd), 0) or die "dup2: $!";
	close $rd;
	exec { $command[0] } @command or die "exec $command[0]: $!";
}
close $rd;

sub forward {
	my ($data) = @_;
	my $off = 0;
	while ($off < length $data) {
		my $n = syswrite($wr, $data, length($data) - $off, $off);
		return 0 unless defined $n;
		$off += $n;
	}
	return 1;
}

sub note {
	my ($what, $why) = @_;
	my $now = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
	if (open(my $log, '>>', '/run/sftca-device/faults.log')) {
		print $log "$now cut-transfer $what: $why ($kind)\n";
		close $log;
	}
	unlink $fault_file if $cfg{once};
}

sub fire {
	my ($why) = @_;
	if ($cfg{stall}) {
		# The connection stays up and nothing is answered any more: what
		# the client sends is swallowed until it goes away.
		note('stalled', $why);
		while (sysread(STDIN, my $junk, 65536)) { }
		close $wr;
		waitpid($pid, 0);
		exit 1;
	}
	# The server side first: a filter nested behind this one (an exec
	# shell running the SFTP subsystem) may fire on the same bytes, and its
	# killconn ends this process before it logs, so one cut logs once.
	close $wr;
	waitpid($pid, 0);
	note('fired', $why);
	exec '/run/sftca-device/lib/killconn';
	exit 1;
}

my ($seen, $writes, $pending, $tail) = (0, 0, '', '');
while (1) {
	my $n = sysread(STDIN, my $chunk, 65536);
	last unless $n;
	if ($mode eq 'bytes') {
		if ($seen + $n >= $count) {
			forward(substr($chunk, 0, $count - $seen));
			fire("after $count bytes");
		}
		$seen += $n;
		forward($chunk) or last;
	} elsif ($mode eq 'marker' && length $marker) {
		my $hay = $tail . $chunk;
		my $at = index($hay, $marker);
		if ($at >= 0) {
			# Only the part of the marker's prefix that is new in this chunk
			# has not been forwarded yet.
			my $upto = $at - length($tail);
			forward(substr($chunk, 0, $upto)) if $upto > 0;
			fire("at marker \"$marker\"");
		}
		forward($chunk) or last;
		$tail = substr($hay, -(length($marker) - 1)) if length($marker) > 1;
	} elsif ($mode eq 'write') {
		# SFTP packets: uint32 length, byte type, payload; type 6 is WRITE.
		$pending .= $chunk;
		while (length($pending) >= 5) {
			my ($len, $type) = unpack('N C', $pending);
			last if length($pending) < 4 + $len;
			my $packet = substr($pending, 0, 4 + $len, '');
			if ($type == 6 && ++$writes >= $count) {
				fire("at write request $writes");
			}
			forward($packet) or last;
		}
	} else {
		forward($chunk) or last;
	}
}
close $wr;
waitpid($pid, 0);
exit($? >> 8);
