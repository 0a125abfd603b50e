# The fuzz targets (fuzz/README.md), a few seconds each on their seed
# corpora, under ASan and UBSan: a crash, a sanitizer report, a broken
# invariant or a leak fails the test, with libFuzzer's report.  "make test"
# builds build/fuzz/ngx_gravitee_fuzz_module.so before; run alone, this
# file builds it with "make fuzz-build".
#
#   TEST_FUZZ_SECONDS   per target (5)
#   TEST_FUZZ_TARGETS   which ones (websocket accept args writers sse jwt
#                       jwks)

use strict;
use warnings;
use Test::More;
use File::Path qw(make_path remove_tree);
use FindBin;
use Time::HiRes qw(time);

my $root = "$FindBin::Bin/..";
my $build = "$root/build/fuzz";
my $seconds = $ENV{TEST_FUZZ_SECONDS} || 5;
my @targets = split ' ', ($ENV{TEST_FUZZ_TARGETS}
                          || 'websocket accept args writers sse jwt jwks');

my $made = `make -s -C '$root' fuzz-build 2>&1`;

if ($? != 0) {
    fail('make fuzz-build');
    diag($made);
    done_testing;
    exit;
}

pass('make fuzz-build');

for my $t (@targets) {
    my $work = "$build/test-corpus/$t";
    my $artifacts = "$build/test-artifacts/$t/";

    # new inputs go to a scratch directory, never to the committed corpus
    remove_tree($work);
    make_path($work, $artifacts);

    my @cmd = ("$root/fuzz/run.sh", $t, "-max_total_time=$seconds",
               '-timeout=10', '-print_final_stats=1',
               "-artifact_prefix=$artifacts", $work, "$root/fuzz/corpus/$t");

    my $start = time;
    my ($out, $rc) = run(\@cmd, $seconds + 60);
    my $took = time - $start;

    my ($cov) = $out =~ /^#\d+\s+DONE\s+cov: (\d+)/m;
    my ($runs) = $out =~ /^stat::number_of_executed_units:\s+(\d+)/m;
    my ($speed) = $out =~ /^stat::average_exec_per_sec:\s+(\d+)/m;

    if (ok($rc == 0 && defined $runs, "fuzz target $t")) {
        note(sprintf('%s: %d runs in %.1f s, %d exec/s, cov %s', $t, $runs,
                     $took, $speed // 0, $cov // '?'));
        next;
    }

    # libFuzzer's report: the sanitizer's or the driver's words, the stack,
    # and where it wrote the input (replay: fuzz/run.sh TARGET FILE)
    my @lines = split /\n/, $out;
    @lines = grep { !/^#\d+\s+(NEW|REDUCE|pulse)\b|^\s+NEW_FUNC/ } @lines;
    diag("fuzz target $t, exit status " . ($rc >> 8) . ($rc & 127
         ? ', signal ' . ($rc & 127) : '') . ":\n"
         . join("\n", @lines > 120 ? @lines[-120 .. -1] : @lines));
}

done_testing;


# a command's output (stderr with stdout) and wait status; killed after
# $limit seconds
sub run {
    my ($cmd, $limit) = @_;

    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";

    if ($pid == 0) {
        close $r;
        open STDOUT, '>&', $w or die;
        open STDERR, '>&', $w or die;
        exec @$cmd or die "exec $cmd->[0]: $!";
    }

    close $w;

    my $out = '';
    my $deadline = time + $limit;

    local $SIG{ALRM} = sub { kill 'KILL', $pid };
    alarm($limit);

    while (my $line = <$r>) {
        $out .= $line;
    }

    alarm(0);
    waitpid($pid, 0);
    my $status = $?;

    $out .= "\n(killed after $limit s)\n" if time > $deadline;

    return ($out, $status);
}
