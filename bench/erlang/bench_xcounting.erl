%% bench_xcounting — counting between two Erlang nodes: a producer on this
%% node sends the integers 1..N to a counter on a peer node on the same
%% host (bench_xnode), then asks for the sum and count with a fresh
%% reference; checked against N(N+1)/2 and N. Timed from "go" to the sum
%% arriving; starting the nodes is not timed. Args: Transport N.
-module(bench_xcounting).
-export([main/1]).

main(Args) ->
    Carrier = bench_xnode:transport(Args),
    N = bench_common:arg(Args, 2, 1000000),
    {Peer, Node} = bench_xnode:start(),
    Counter = spawn(Node, fun() -> counter(0, 0) end),
    Main = self(),
    Producer = spawn(fun() -> receive go -> produce(Counter, 1, N, Main) end end),
    %% Untimed: the connection is up and the counter's code is loaded.
    Ref0 = make_ref(),
    Counter ! {get, self(), Ref0},
    receive {Ref0, 0, 0} -> ok after 30000 -> bench_common:fail("no counter", []) end,
    T0 = bench_common:now_s(),
    Producer ! go,
    {Sum, Count} = receive {sum, S, C} -> {S, C}
                   after 600000 -> bench_common:fail("xcounting: timed out", [])
                   end,
    Secs = bench_common:now_s() - T0,
    Want = N * (N + 1) div 2,
    {Sum, Count} =:= {Want, N} orelse
        bench_common:fail("xcounting: sum ~p of ~p, expected ~p of ~p", [Sum, Count, Want, N]),
    bench_xnode:stop(Peer),
    bench_common:result("xcounting", N, Secs, "msgs_per_s", N / Secs, "transport=" ++ Carrier).

produce(Counter, I, N, Main) when I =< N ->
    Counter ! I,
    produce(Counter, I + 1, N, Main);
produce(Counter, _, _, Main) ->
    Ref = make_ref(),
    Counter ! {get, self(), Ref},
    receive {Ref, Sum, Count} -> Main ! {sum, Sum, Count} end.

counter(Sum, Count) ->
    receive
        I when is_integer(I) -> counter(Sum + I, Count + 1);
        {get, From, Ref} -> From ! {Ref, Sum, Count}, counter(Sum, Count)
    end.
