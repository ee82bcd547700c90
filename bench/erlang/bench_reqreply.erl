%% bench_reqreply — C client processes each keep one request in flight
%% against one server process, N requests in all. A request is
%% {req, From, Ref, V} with a fresh reference (as gen_server:call does, but
%% without gen_server); the server answers {Ref, V + 1}; the client waits
%% with a 60 s timeout, checks the answer and sends the next request.
-module(bench_reqreply).
-export([main/1]).

main(Args) ->
    C = bench_common:arg(Args, 1, 100),
    N = bench_common:arg(Args, 2, 1000000),
    Each = N div C,
    Total = Each * C,
    Main = self(),
    Server = spawn(fun server/0),
    Clients = [spawn(fun() -> receive go -> client(Server, 0, Each, Main) end end)
               || _ <- lists:seq(1, C)],
    T0 = bench_common:now_s(),
    [Pid ! go || Pid <- Clients],
    Answered = lists:sum([receive {done, D} -> D
                          after 600000 -> bench_common:fail("reqreply: timed out", [])
                          end || _ <- Clients]),
    Secs = bench_common:now_s() - T0,
    Answered =:= Total orelse bench_common:fail("reqreply: ~p answers", [Answered]),
    bench_common:result("reqreply", Total, Secs, "reqs_per_s", Total / Secs,
                        "c=" ++ integer_to_list(C)).

server() ->
    receive
        {req, From, Ref, V} -> From ! {Ref, V + 1}, server()
    end.

client(_Server, Each, Each, Main) ->
    Main ! {done, Each};
client(Server, Done, Each, Main) ->
    Ref = make_ref(),
    Server ! {req, self(), Ref, Done},
    receive
        {Ref, V} when V =:= Done + 1 -> client(Server, Done + 1, Each, Main);
        {Ref, V} -> bench_common:fail("reqreply: answer ~p to ~p", [V, Done])
    after 60000 -> bench_common:fail("reqreply: request timed out", [])
    end.
