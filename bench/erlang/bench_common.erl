%% bench_common — what every Erlang benchmark module shares: argument
%% parsing, the monotonic clock, resident memory and the RESULT line.
%% Each module is started as `erl -noshell +S 2 -run bench_<name> main Args`
%% and halts with status 0 after a checked result, 1 otherwise.
-module(bench_common).
-export([arg/3, now_s/0, rss_bytes/0, result/6, fail/2, patience_ms/0]).

%% Argument Idx (1-based) of the -run list as a positive integer, or Def.
arg(Args, Idx, Def) when length(Args) < Idx -> Def;
arg(Args, Idx, _Def) ->
    case string:to_integer(lists:nth(Idx, Args)) of
        {V, []} when V > 0 -> V;
        _ -> fail("argument ~p must be a positive integer", [Idx])
    end.

%% Seconds on the monotonic clock, as a float.
now_s() ->
    erlang:monotonic_time(nanosecond) / 1.0e9.

%% Resident set size in bytes: VmRSS from /proc/self/status (the same
%% number as statm's resident pages, without assuming a page size).
rss_bytes() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    [_, Rest] = binary:split(Status, <<"VmRSS:">>),
    [Kb | _] = string:lexemes(binary_to_list(Rest), " \t\n"),
    list_to_integer(Kb) * 1024.

patience_ms() -> 600000.

%% Prints the machine-readable line and halts with status 0.
result(Workload, N, Seconds, Metric, Value, Extra) ->
    ExtraStr = case Extra of "" -> ""; _ -> " " ++ Extra end,
    io:format("RESULT impl=erlang workload=~s n=~b seconds=~.6f metric=~s value=~s~s check=ok~n",
              [Workload, N, Seconds, Metric, num(Value), ExtraStr]),
    halt(0).

%% Reports a wrong result and halts with status 1.
fail(Fmt, Args) ->
    io:format(standard_error, "erlang bench: wrong result: " ++ Fmt ++ "~n", Args),
    halt(1).

num(V) when is_integer(V) -> integer_to_list(V);
num(V) -> float_to_list(V, [{decimals, 6}, compact]).
