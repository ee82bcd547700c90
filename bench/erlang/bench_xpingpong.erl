%% bench_xpingpong — pingpong between two Erlang nodes: ping on this node,
%% pong on a peer node on the same host (bench_xnode), N round trips of one
%% integer over distribution. Timed from the first send to the last reply;
%% starting the nodes is not timed. Args: Transport N.
-module(bench_xpingpong).
-export([main/1]).

main(Args) ->
    Carrier = bench_xnode:transport(Args),
    N = bench_common:arg(Args, 2, 20000),
    {Peer, Node} = bench_xnode:start(),
    Pong = spawn(Node, fun pong/0),
    Ping = spawn(fun() -> ping_wait(Pong) end),
    %% One untimed round trip, so the connection and code loading are done.
    Pong ! {ball, self(), 0},
    receive {ball, _, 1} -> ok after 30000 -> bench_common:fail("no pong", []) end,
    T0 = bench_common:now_s(),
    Ping ! {play, self(), N},
    Played = receive {done, P} -> P
             after 600000 -> bench_common:fail("xpingpong: timed out", [])
             end,
    Secs = bench_common:now_s() - T0,
    Played =:= N orelse bench_common:fail("xpingpong: ~p round trips", [Played]),
    bench_xnode:stop(Peer),
    bench_common:result("xpingpong", N, Secs, "us_per_rt", Secs * 1.0e6 / N,
                        "transport=" ++ Carrier).

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
