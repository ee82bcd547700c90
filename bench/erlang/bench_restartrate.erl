%% bench_restartrate — how many restarts per second a supervisor sustains.
%% This module is also the supervisor's callback module: one_for_one,
%% intensity 2^32 - 1 within 1 s (it never gives up here; troupe's is
%% UINT32_MAX within 1 s), one permanent bench_restart_worker child that
%% counts its start in an atomics array and stops with reason crash as
%% soon as it has started (init returns {continue, crash}, handle_continue
%% stops), so the supervisor starts the next one at once. The start that
%% makes N + 1 (the first start plus N restarts) sends `done` to main.
%% Timed from supervisor:start_link to that message; the rate is N / time.
%% A second figure is the rate over the first 2,000 restarts (start 2,001
%% sends `burst`): OTP's supervisor keeps the times of the restarts within
%% the period in a list that it walks (lists:takewhile, length) on every
%% restart, so its rate falls as the list grows; the burst shows the rate
%% before the list is long.
%% Logging is off (logger level none): the crash and supervisor reports
%% are not written (troupe writes none either).
%% Checks: the supervisor is still alive and its child is running or being
%% restarted, and at least N + 1 starts were counted.
%% Usage: erl -noshell +S 2 -run bench_restartrate main N
-module(bench_restartrate).
-behaviour(supervisor).
-export([main/1, init/1]).

-define(BURST, 2000).

main(Args) ->
    try run(Args)
    catch Class:Reason:Stack ->
        bench_common:fail("restartrate: ~p:~p ~p", [Class, Reason, Stack])
    end.

run(Args) ->
    logger:set_primary_config(level, none),
    N = bench_common:arg(Args, 1, 50000),
    N > ?BURST orelse bench_common:fail("restartrate: N must be larger than ~p", [?BURST]),
    Counter = atomics:new(1, []),
    T0 = erlang:monotonic_time(nanosecond),
    {ok, Sup} = supervisor:start_link(?MODULE, {crasher, Counter, ?BURST + 1, N + 1, self()}),
    await(burst),
    BurstSecs = (erlang:monotonic_time(nanosecond) - T0) / 1.0e9,
    await(done),
    Secs = (erlang:monotonic_time(nanosecond) - T0) / 1.0e9,
    %% Untimed checks: the supervisor did not give up, and the count.
    [{crasher, _, worker, _}] = supervisor:which_children(Sup),
    is_process_alive(Sup) orelse bench_common:fail("restartrate: the supervisor is gone", []),
    Starts = atomics:get(Counter, 1),
    Starts >= N + 1 orelse bench_common:fail("restartrate: ~p starts, expected ~p", [Starts, N + 1]),
    bench_common:result("restartrate", N, Secs, "restarts_per_s", N / Secs,
                        "metric2=burst_restarts_per_s value2="
                        ++ float_to_list(?BURST / BurstSecs, [{decimals, 3}, compact])).

%% Waits for Tag from the child. main runs in a process that traps exits,
%% so a supervisor that gave up arrives here as an 'EXIT' message.
await(Tag) ->
    receive
        Tag -> ok;
        {'EXIT', _, Why} -> bench_common:fail("restartrate: the supervisor exited: ~p", [Why])
    after 600000 -> bench_common:fail("restartrate: timed out", [])
    end.

init(WorkerArg) ->
    Flags = #{strategy => one_for_one, intensity => 16#FFFFFFFF, period => 1},
    Child = #{id => crasher, start => {bench_restart_worker, start_link, [none, WorkerArg]},
              restart => permanent, shutdown => 5000, type => worker},
    {ok, {Flags, [Child]}}.
