%% bench_pingpong — two processes bounce one integer N round trips. The
%% main process starts the game and waits for done; only that is timed.
-module(bench_pingpong).
-export([main/1]).

main(Args) ->
    N = bench_common:arg(Args, 1, 2000000),
    Pong = spawn(fun pong/0),
    Ping = spawn(fun() -> ping_wait(Pong) end),
    T0 = bench_common:now_s(),
    Ping ! {play, self(), N},
    Played = receive {done, P} -> P
             after 600000 -> bench_common:fail("pingpong: timed out", [])
             end,
    Secs = bench_common:now_s() - T0,
    Played =:= N orelse bench_common:fail("pingpong: ~p round trips", [Played]),
    bench_common:result("pingpong", N, Secs, "ns_per_rt", Secs * 1.0e9 / N, "").

ping_wait(Pong) ->
    receive
        {play, From, N} ->
            Pong ! {ball, self(), 0},
            ping(Pong, From, N)
    end.

ping(Pong, From, N) ->
    receive
        {ball, _, K} when K < N -> Pong ! {ball, self(), K}, ping(Pong, From, N);
        {ball, _, K} -> From ! {done, K}
    end.

pong() ->
    receive
        {ball, From, K} -> From ! {ball, self(), K + 1}, pong()
    end.
