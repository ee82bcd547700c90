%% bench_restart — crash of a supervised, named gen_server to its
%% replacement answering a call. This module is also the supervisor's
%% callback module: one_for_one, intensity K + 1 within 1 s (it never gives
%% up here), one permanent bench_restart_worker child registered locally
%% as restart_worker. K times, one restart at a time:
%%   pooled: main sends gen_server:cast(restart_worker, crash); the child's
%%           handle_cast returns {stop, crash, _}, an abnormal exit, and
%%           the supervisor starts a new one;
%%   proc:   the child owns a port to /bin/cat and main SIGKILLs cat's OS
%%           process (the pid the child read with erlang:port_info(Port,
%%           os_pid)). Erlang has no kill(2) of its own and os:cmd forks a
%%           shell per call, so a helper port started once, untimed,
%%           (/bin/sh running `while read p; do kill -9 "$p"; done`, whose
%%           kill is a shell builtin) does it: main writes the pid to it.
%%           That pipe hop is inside the timed span (troupe calls kill()
%%           directly). The port reports cat's exit status, the child stops
%%           with {port_exit, 137}, and the supervisor starts a new child,
%%           which opens a new port to a new cat.
%% Timed from just before the cast (pooled) or the write to the killer
%% port (proc) to the first answer from the replacement: main calls
%% gen_server:call(restart_worker, Ping, 5000); while the name is
%% unregistered or the call reaches the dying child (the call exits) it
%% yields and tries again, as the troupe program retries its call. A proc
%% ping travels through the port: the child writes a number to cat and
%% answers with cat's echo.
%% Checks: every answer comes from a new child (pooled: its start number,
%% counted in init, is the expected one; proc: cat echoed the number sent
%% and its OS pid is new), and K + 1 starts in all. Logging is off (logger
%% level none), so the crash and supervisor reports are not written:
%% troupe writes none either.
%% Usage: erl -noshell +S 2 -run bench_restart main pooled|proc K
-module(bench_restart).
-behaviour(supervisor).
-export([main/1, init/1]).

-define(NAME, restart_worker).

main(Args) ->
    try run(Args)
    catch Class:Reason:Stack ->
        bench_common:fail("restart: ~p:~p ~p", [Class, Reason, Stack])
    end.

run(Args) ->
    logger:set_primary_config(level, none),
    Mode = case Args of
               ["proc" | _] -> proc;
               ["pooled" | _] -> pooled;
               _ -> bench_common:fail("first argument must be pooled or proc", [])
           end,
    K = bench_common:arg(Args, 2, case Mode of proc -> 100; pooled -> 10000 end),
    Counter = atomics:new(1, []),
    WorkerArg = case Mode of pooled -> {plain, Counter}; proc -> {port, Counter} end,
    {ok, Sup} = supervisor:start_link(?MODULE, {K + 1, WorkerArg}),
    Killer = case Mode of
                 proc -> open_port({spawn_executable, "/bin/sh"},
                                   [{args, ["-c", "while read p; do kill -9 \"$p\"; done"]},
                                    binary, use_stdio]);
                 pooled -> none
             end,
    First = ping_by_name(Mode, 0, none),              % untimed: the first start
    First =:= {1, self_os_pid()} orelse Mode =:= proc
        orelse bench_common:fail("restart: first answer ~p", [First]),
    {Lat, Total} = loop(1, K, Mode, Killer, First, [], 0),
    Starts = atomics:get(Counter, 1),
    Starts =:= K + 1 orelse bench_common:fail("restart: ~p starts, expected ~p", [Starts, K + 1]),
    [{worker, Pid, worker, _}] = supervisor:which_children(Sup),
    Pid =:= whereis(?NAME) orelse bench_common:fail("restart: the child is not the named one", []),
    Sorted = lists:sort(Lat),
    {Metric, Metric2} = case Mode of
                            pooled -> {"p50_us", "p99_us"};
                            proc -> {"p50_ms", "p99_ms"}
                        end,
    P99 = percentile(Sorted, K, 99),
    bench_common:result("restart", K, Total, Metric, percentile(Sorted, K, 50),
                        lists:flatten(io_lib:format("metric2=~s value2=~s child=~s",
                                                    [Metric2, float_to_list(P99, [{decimals, 6},
                                                                                  compact]),
                                                     Mode]))).

init({Intensity, WorkerArg}) ->
    Flags = #{strategy => one_for_one, intensity => Intensity, period => 1},
    Child = #{id => worker, start => {bench_restart_worker, start_link, [?NAME, WorkerArg]},
              restart => permanent, shutdown => 5000, type => worker},
    {ok, {Flags, [Child]}}.

loop(I, K, _Mode, _Killer, _Prev, Lat, Total) when I > K ->
    {Lat, Total};
loop(I, K, Mode, Killer, {PrevA, PrevPid}, Lat, Total) ->
    T0 = erlang:monotonic_time(nanosecond),
    case Mode of
        pooled -> gen_server:cast(?NAME, crash);
        proc -> port_command(Killer, [integer_to_list(PrevPid), $\n])
    end,
    {A, Pid} = ping_by_name(Mode, I, PrevPid),
    T1 = erlang:monotonic_time(nanosecond),
    case Mode of
        pooled when A =/= PrevA + 1 ->
            bench_common:fail("restart ~p: answer from start ~p after ~p", [I, A, PrevA]);
        proc when A =/= I; Pid =:= PrevPid ->
            bench_common:fail("restart ~p: echo ~p from pid ~p after pid ~p", [I, A, Pid, PrevPid]);
        _ -> ok
    end,
    Scale = case Mode of pooled -> 1.0e3; proc -> 1.0e6 end,
    loop(I + 1, K, Mode, Killer, {A, Pid}, [(T1 - T0) / Scale | Lat], Total + (T1 - T0) / 1.0e9).

%% Calls the name until a child answers; gives up after 10 s. In proc
%% mode an answer through the killed cat's pid (OldPid) is not the
%% replacement's: the kill travels through the killer port, so a call can
%% overtake it; such an answer is skipped like a failed call.
ping_by_name(Mode, Seq, OldPid) ->
    ping_by_name(Mode, Seq, OldPid, erlang:monotonic_time(millisecond) + 10000).

ping_by_name(Mode, Seq, OldPid, GiveUp) ->
    Req = case Mode of pooled -> ping; proc -> {ping, Seq} end,
    case try gen_server:call(?NAME, Req, 5000) catch exit:Why -> {failed, Why} end of
        {failed, _} = Failed -> retry(Mode, Seq, OldPid, GiveUp, Failed);
        {_, OldPid} = Old when Mode =:= proc -> retry(Mode, Seq, OldPid, GiveUp, Old);
        Answer -> Answer
    end.

retry(Mode, Seq, OldPid, GiveUp, Last) ->
    erlang:monotonic_time(millisecond) > GiveUp
        andalso bench_common:fail("restart: no new child answered within 10 s (~p)", [Last]),
    erlang:yield(),
    ping_by_name(Mode, Seq, OldPid, GiveUp).

self_os_pid() -> list_to_integer(os:getpid()).

%% The P-th percentile of the sorted list (nearest rank), as troupe's.
percentile(Sorted, N, P) ->
    Rank = max(1, min(N, ceil(P / 100 * N - 0.000001))),
    lists:nth(Rank, Sorted).
