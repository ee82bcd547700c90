%% bench_skynet — a tree of processes with N leaves (N a power of 10), 10
%% children per node. A leaf sends its number to its parent and ends; an
%% inner node spawns 10 children, sums their replies and sends the sum up.
%% Timed from spawning the root to main receiving the total.
-module(bench_skynet).
-export([main/1]).

main(Args) ->
    N = bench_common:arg(Args, 1, 1000000),
    Main = self(),
    T0 = bench_common:now_s(),
    spawn(fun() -> skynet(Main, 0, N) end),
    Sum = receive {n, S} -> S
          after 600000 -> bench_common:fail("skynet: timed out", [])
          end,
    Secs = bench_common:now_s() - T0,
    Want = N * (N - 1) div 2,
    Sum =:= Want orelse bench_common:fail("skynet: sum ~p, expected ~p", [Sum, Want]),
    bench_common:result("skynet", N, Secs, "seconds", Secs, "").

skynet(Parent, Num, 1) ->
    Parent ! {n, Num};
skynet(Parent, Num, Size) ->
    Self = self(),
    Sub = Size div 10,
    [spawn(fun() -> skynet(Self, Num + I * Sub, Sub) end) || I <- lists:seq(0, 9)],
    Parent ! {n, collect(10, 0)}.

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive {n, V} -> collect(K - 1, Sum + V) end.
